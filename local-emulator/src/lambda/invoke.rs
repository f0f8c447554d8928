//! Invokes handlers in-process, with the integration timeout, and isolates
//! their failures (errors, timeouts, panics) from the emulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomcast_core::gateway::Gateway;
use roomcast_core::store::Store;
use serde_json::Value;

use crate::faults::{FaultKind, Faults, Point, Subject};
use crate::lambda::FunctionError;
use crate::lambda::environment::{self, Shared};
use crate::lambda::launch::{self, Toolchain};
use crate::lambda::log_text::{EventIds, first_lines, trace_root};
use crate::lambda::options::FunctionsMode;
use crate::lambda::pool::{InvokeContext, ProcessFunction};
use crate::lambda::registry::{FunctionPlugin, Handler, InvokeError, Setup};
use crate::lambda::runtime_sdk;
use crate::metrics::Metrics;
use crate::template::FunctionSpec;
use crate::timeline::Timeline;

/// Why an invocation produced no response. API Gateway answers each the
/// same way (500 on the handshake, an error frame on a message), except
/// the authorizer's `Unauthorized` error, which is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvokeFailure {
    /// The handler returned an error (Lambda's errorType/errorMessage).
    #[error("handler error: {0}")]
    Error(InvokeError),
    /// It ran past its timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// It panicked.
    #[error("handler panicked")]
    Panicked,
    /// The function is shutting down; nothing ran.
    #[error("function closed")]
    Closed,
    /// Lambda refused it for want of concurrency (an injected
    /// `invoke-throttle`); nothing ran. The Invoke API answers 429
    /// `TooManyRequestsException`; an asynchronous event is tried again.
    #[error("throttled: the function's concurrency is exhausted")]
    Throttled,
}

/// One function, initialised once like a warm Lambda container (in
/// process), or a pool of processes behind the Runtime API.
pub(crate) struct Function {
    /// The logical id.
    pub(crate) name: String,
    /// `FunctionName`, else the logical id: the name in its ARN.
    pub(crate) function_name: String,
    runs: Runs,
    timeout: Duration,
    /// Lambda's concurrency limit: invocations beyond it wait their turn
    /// instead of piling up (which, with each fanning out, thrashes).
    concurrency: Arc<tokio::sync::Semaphore>,
    /// Injected failures (`crate::faults`).
    faults: Arc<Faults>,
    /// Where invocations are recorded for the inspector.
    timeline: Arc<Timeline>,
}

/// How a function runs.
enum Runs {
    /// A handler in the emulator's process.
    InProcess(Handler),
    /// Processes behind the Runtime API.
    Processes(Arc<ProcessFunction>),
}

impl Function {
    /// An invocation by API Gateway (a route, the authorizer).
    pub(crate) async fn invoke(
        &self,
        route: &str,
        event: Value,
        metrics: &Metrics,
    ) -> Result<Value, InvokeFailure> {
        self.call(route, event, InvokeContext::default(), metrics)
            .await
    }

    /// An invocation with what the Invoke API may add (client context).
    pub(crate) async fn call(
        &self,
        label: &str,
        event: Value,
        context: InvokeContext,
        metrics: &Metrics,
    ) -> Result<Value, InvokeFailure> {
        let Ok(_permit) = self.concurrency.clone().acquire_owned().await else {
            return Err(InvokeFailure::Closed);
        };
        let ids = EventIds::of(&event);
        // The event itself, for replay, only while an inspector watches.
        let replayable = self.timeline.watching().then(|| event.clone());
        if let Some(injected) = self.injected(&event, &ids).await {
            let failure = self.failed(label, &ids, injected, metrics);
            let none = Served::default();
            self.record(
                label,
                &ids,
                Duration::ZERO,
                Err(&failure),
                replayable,
                &none,
            );
            return Err(failure);
        }
        let started = Instant::now();
        let mut served = Served::default();
        let work = match &self.runs {
            // A cold start's init runs before the function's timeout starts
            // (its own limit is in `prepare`).
            Runs::Processes(p) => match p.prepare().await {
                Ok(prepared) => {
                    served = Served {
                        cold: Some(prepared.cold),
                        trace: trace_root(&prepared.trace_id),
                        lambda_request_id: Some(prepared.request_id.clone()),
                        pid: prepared.pid,
                    };
                    let mut context = context;
                    context.crash_after = self.crash(&event, &ids);
                    p.clone().invoke_json(prepared, event, context)
                }
                Err(e) => return Err(self.failed(label, &ids, InvokeFailure::Error(e), metrics)),
            },
            Runs::InProcess(handler) => handler(event),
        };
        // A task of its own, so a panic is contained like a crashed invocation.
        let task = tokio::spawn(work);
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(InvokeFailure::Error(e)),
            Ok(Err(_)) => Err(InvokeFailure::Panicked),
            Err(_) => {
                abort.abort();
                Err(InvokeFailure::Timeout(self.timeout))
            }
        };
        metrics.handler_latency(label, started.elapsed());
        let outcome = outcome.map_err(|e| self.failed(label, &ids, e, metrics));
        self.record(
            label,
            &ids,
            started.elapsed(),
            outcome.as_ref().map(|_| ()),
            replayable,
            &served,
        );
        outcome
    }

    /// The invocation, on the inspector's timeline.
    fn record(
        &self,
        label: &str,
        ids: &EventIds,
        took: Duration,
        outcome: Result<(), &InvokeFailure>,
        event: Option<Value>,
        served: &Served,
    ) {
        // Events too large to show are not kept (the ring stays small), and
        // no credential is kept in them (`timeline::redact`).
        let event = event
            .filter(|e| e.to_string().len() <= MAX_KEPT_EVENT)
            .map(|mut e| {
                let secrets = crate::timeline::redact::redact_event(&mut e);
                if !secrets.is_empty() {
                    self.timeline
                        .keep_secrets(ids.request_id.as_deref().unwrap_or_default(), secrets);
                }
                e
            });
        self.timeline.record_now(
            "invoke",
            serde_json::json!({
                "event": event,
                "function": self.name,
                "route": label,
                "connectionId": ids.connection_id,
                "requestId": ids.request_id,
                "durationMs": took.as_secs_f64() * 1000.0,
                "mode": match self.runs { Runs::InProcess(_) => "in-process", Runs::Processes(_) => "process" },
                "cold": served.cold,
                "traceId": served.trace,
                "lambdaRequestId": served.lambda_request_id,
                "pid": served.pid,
                "outcome": outcome.map_or_else(|e| e.to_string(), |()| "ok".to_owned()),
            }),
        );
    }

    /// Stops the warm instances of a process function, so that its next
    /// invocation starts cold; how many stopped. `None` for a function in
    /// the emulator's process (it has no instances).
    pub(crate) fn force_cold(&self) -> Option<usize> {
        match &self.runs {
            Runs::Processes(p) => Some(p.reload()),
            Runs::InProcess(_) => None,
        }
    }

    /// An injected failure for this invocation, if a fault strikes it: an
    /// error at once, or a timeout after the function's timeout, as Lambda
    /// would report them. The function does not run.
    async fn injected(&self, event: &Value, ids: &EventIds) -> Option<InvokeFailure> {
        match self.faults.take(Point::Invoke, self.subject(event, ids))? {
            FaultKind::InvokeError => Some(InvokeFailure::Error(InvokeError {
                error_type: "Roomcast.InjectedFault".into(),
                error_message: "an injected invoke-error fault".into(),
            })),
            FaultKind::InvokeTimeout => {
                tokio::time::sleep(self.timeout).await;
                Some(InvokeFailure::Timeout(self.timeout))
            }
            FaultKind::InvokeThrottle => Some(InvokeFailure::Throttled),
            _ => None,
        }
    }

    /// Whom this invocation is for, as faults are scoped.
    fn subject<'a>(&'a self, event: &'a Value, ids: &'a EventIds) -> Subject<'a> {
        Subject {
            connection: ids.connection_id.as_deref(),
            user: event["requestContext"]["authorizer"]["principalId"].as_str(),
            function: Some(&self.name),
        }
    }

    /// When to kill the process serving this invocation, if an
    /// `invoke-crash` fault strikes it.
    fn crash(&self, event: &Value, ids: &EventIds) -> Option<Duration> {
        match self.faults.take(Point::Process, self.subject(event, ids))? {
            FaultKind::InvokeCrash { after_ms } => Some(Duration::from_millis(after_ms)),
            _ => None,
        }
    }

    /// Counts and logs a failed invocation: the function, the route or
    /// caller, the connection and API Gateway's request id, and the first
    /// lines of the error, so a developer sees more than the client's
    /// "Internal server error".
    fn failed(
        &self,
        label: &str,
        ids: &EventIds,
        e: InvokeFailure,
        metrics: &Metrics,
    ) -> InvokeFailure {
        metrics.error(match e {
            InvokeFailure::Error(_) => "handler_error",
            InvokeFailure::Timeout(_) => "handler_timeout",
            InvokeFailure::Panicked => "handler_panic",
            InvokeFailure::Closed => "handler_closed",
            InvokeFailure::Throttled => "handler_throttled",
        });
        let detail = match &e {
            InvokeFailure::Error(err) => {
                format!("{}: {}", err.error_type, first_lines(&err.error_message))
            }
            other => other.to_string(),
        };
        let none = "-";
        tracing::warn!(
            function = %self.name, route = %label,
            connection_id = %ids.connection_id.as_deref().unwrap_or(none),
            request_id = %ids.request_id.as_deref().unwrap_or(none), error = %detail,
            "invocation failed"
        );
        e
    }
}

/// Which instance served an invocation run as a process, for the
/// timeline (nothing for an in-process one).
#[derive(Debug, Default)]
struct Served {
    /// It paid the instance's init.
    cold: Option<bool>,
    /// The root of the trace header it got, which the SDKs pass on as
    /// `x-amzn-trace-id` with each call it makes: how the timeline ties its
    /// `@connections` calls to it.
    trace: Option<String>,
    /// Lambda's request id: the one its log lines carry.
    lambda_request_id: Option<String>,
    /// The process that served it.
    pid: Option<u32>,
}

/// The largest event the timeline keeps for replay, bytes.
const MAX_KEPT_EVENT: usize = 16 * 1024;

/// What every function is built with: the emulator's shared parts.
pub(crate) struct FunctionEnv {
    /// What runs in process, by binary name: the handlers given one by
    /// one first, then the plug-ins.
    pub(crate) plugins: Vec<Arc<dyn FunctionPlugin>>,
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) store: Arc<dyn Store>,
    /// The in-process gateway, when chosen.
    pub(crate) gateway: Option<Arc<dyn Gateway>>,
    pub(crate) integration_timeout: Duration,
    pub(crate) max_concurrency: usize,
    pub(crate) mode: FunctionsMode,
    /// Where process functions' programs come from.
    pub(crate) tools: Toolchain,
    /// What every function's environment shares (also the in-process
    /// ones: `injected`, the settings the emulator provides unless the
    /// template or the process sets them).
    pub(crate) shared: Shared,
    pub(crate) metrics: Arc<Metrics>,
    /// Injected failures, shared with the state.
    pub(crate) faults: Arc<Faults>,
    /// The inspector's timeline, shared with the state.
    pub(crate) timeline: Arc<Timeline>,
    /// Functions whose cargo build failed at start-up, with why.
    pub(crate) failed_builds: BTreeMap<String, super::LaunchError>,
    /// Process functions to hot-reload (`--watch`), filled as they are built.
    pub(crate) watched: std::sync::Mutex<Vec<crate::lambda::watch::Watched>>,
}

/// Builds a function from its template entry: in process when the
/// emulator has a handler for its binary (and the mode allows), else as
/// processes.
pub(crate) async fn build_function(
    spec: &FunctionSpec,
    fenv: &FunctionEnv,
) -> Result<Arc<Function>, FunctionError> {
    let runs = if runs_in_process(spec, fenv) {
        let built = fenv.tools.project.join(&spec.code_uri).join("bootstrap");
        if built.is_file() {
            // A template `sam build` wrote: its artifacts are what a
            // rehearsal is for, and they run only as processes.
            tracing::warn!(function = %spec.logical_id, bootstrap = %built.display(), "runs in the emulator's process, not as this built bootstrap: pass --functions process (with --dynamodb-endpoint) to run the artifacts");
        }
        Runs::InProcess(in_process_handler(spec, fenv).await?)
    } else {
        Runs::Processes(process_function(spec, fenv).await?)
    };
    let concurrency = spec.reserved_concurrency.unwrap_or(fenv.max_concurrency);
    Ok(Arc::new(Function {
        name: spec.logical_id.clone(),
        function_name: spec.function_name.clone(),
        runs,
        timeout: Duration::from_secs(spec.timeout_secs).min(fenv.integration_timeout),
        concurrency: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        faults: fenv.faults.clone(),
        timeline: fenv.timeline.clone(),
    }))
}

/// Whether `spec` runs in the emulator's process: when a plug-in provides
/// its binary and the mode allows.
pub(crate) fn runs_in_process(spec: &FunctionSpec, fenv: &FunctionEnv) -> bool {
    let known = fenv
        .plugins
        .iter()
        .any(|p| p.binaries().contains(&spec.binary));
    known && fenv.mode == FunctionsMode::InProcess
}

/// The in-process handler: its environment is the template's, overridden
/// by the emulator process's own, plus `injected` for anything neither sets.
async fn in_process_handler(
    spec: &FunctionSpec,
    fenv: &FunctionEnv,
) -> Result<Handler, FunctionError> {
    let mut env = fenv.shared.injected.clone();
    for (k, v) in &spec.environment {
        if !v.is_empty() || !env.contains_key(k) {
            env.insert(k.clone(), v.clone());
        }
    }
    let env = Arc::new(env);
    let setup = Setup {
        env: Arc::new(move |k: &str| std::env::var(k).ok().or_else(|| env.get(k).cloned())),
        sdk: fenv.sdk.clone(),
        store: fenv.store.clone(),
        gateway: fenv.gateway.clone(),
        timeout: Duration::from_secs(spec.timeout_secs).min(fenv.integration_timeout),
    };
    let Some(build) = fenv
        .plugins
        .iter()
        .find_map(|p| p.build(&spec.binary, setup.clone()))
    else {
        return Err(FunctionError::UnknownFunction {
            function: spec.logical_id.clone(),
            binary: spec.binary.clone(),
            known: fenv
                .plugins
                .iter()
                .flat_map(|p| p.binaries())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    build.await.map_err(|e| FunctionError::FunctionInit {
        function: spec.logical_id.clone(),
        reason: e.to_string(),
    })
}

/// The function as processes: its program resolved (and built) now, so a
/// missing binary fails start-up naming the function.
async fn process_function(
    spec: &FunctionSpec,
    fenv: &FunctionEnv,
) -> Result<Arc<ProcessFunction>, FunctionError> {
    if let Some(e) = fenv.failed_builds.get(&spec.logical_id) {
        return Err(e.clone().into());
    }
    let launch = launch::resolve(spec, &fenv.tools).await?;
    let host = |k: &str| std::env::var(k).ok();
    let mut env = environment::for_function(spec, &launch.task_root, &fenv.shared, &host);
    let sdk = runtime_sdk::provide(
        spec,
        &launch.task_root,
        &fenv.tools.cache,
        &fenv.tools.python,
    )
    .await?;
    for (k, v) in sdk.into_iter().chain(launch.env.iter().cloned()) {
        // The function's own setting wins, as a template variable would.
        env.entry(k).or_insert(v);
    }
    let arn = environment::function_arn(&fenv.shared.region, &spec.function_name);
    tracing::info!(function = %spec.logical_id, program = %launch.program.display(), runtime = %spec.runtime, "runs as processes");
    let cargo = launch.program.starts_with(&fenv.tools.target_dir);
    let (program, task_root) = (launch.program.clone(), launch.task_root.clone());
    let mut pool = ProcessFunction::new(
        &spec.logical_id,
        launch,
        env,
        arn,
        Duration::from_secs(spec.timeout_secs),
        fenv.metrics.clone(),
    );
    pool.timeline = Some(fenv.timeline.clone());
    let pool = Arc::new(pool);
    let watched = crate::lambda::watch::Watched::new(
        Arc::downgrade(&pool),
        spec,
        cargo,
        &program,
        &task_root,
        &fenv.tools.project,
    );
    fenv.watched
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(watched);
    Ok(pool)
}

#[cfg(test)]
mod tests;
