//! A function's execution environments: one per concurrently busy
//! invocation, reused while warm. The caller (`invoke::Function`) bounds
//! concurrency and time; this pool decides which instance serves, and
//! throws away the ones that timed out, crashed or failed init.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use super::instance::{Instance, InstanceError, trace_id};
use super::process::{Launch, Output};
use super::sandbox::Work;
use crate::lambda::registry::{InvokeError, InvokeFuture};
use crate::metrics::Metrics;

/// One function run as processes.
#[derive(Debug)]
pub(crate) struct ProcessFunction {
    /// The logical id, for logs and metrics.
    pub(crate) name: Arc<str>,
    pub(crate) launch: Launch,
    /// Its whole environment, reserved variables included (not yet
    /// `AWS_LAMBDA_RUNTIME_API`, which is per instance).
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) arn: String,
    pub(crate) timeout: Duration,
    pub(crate) metrics: Arc<Metrics>,
    /// Where its output lines go while an inspector watches.
    pub(crate) timeline: Option<Arc<crate::timeline::Timeline>>,
    idle: Mutex<Vec<(u64, Instance)>>,
    /// Bumped by a reload: instances of an older generation finish what
    /// they run and are not reused.
    generation: AtomicU64,
}

/// Lambda's limit on the Init phase.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// An instance ready for one invocation (warm, or fresh with its init
/// done), and the request id it will serve.
#[derive(Debug)]
pub(crate) struct Prepared {
    instance: Instance,
    generation: u64,
    /// Lambda's request id for the invocation.
    pub(crate) request_id: String,
    /// The X-Ray trace header the invocation gets (`Lambda-Runtime-Trace-Id`);
    /// the SDKs pass it on with each call the function makes.
    pub(crate) trace_id: String,
    /// The serving process's id.
    pub(crate) pid: Option<u32>,
    /// A fresh instance: this invocation pays its init (a cold start).
    pub(crate) cold: bool,
}

/// What one invocation carries besides the payload.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvokeContext {
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
    /// Kill the process this long after its runtime takes the event (an
    /// injected `invoke-crash`).
    pub(crate) crash_after: Option<Duration>,
}

impl ProcessFunction {
    pub(crate) fn new(
        name: &str,
        launch: Launch,
        env: BTreeMap<String, String>,
        arn: String,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            name: name.into(),
            launch,
            env,
            arn,
            timeout,
            metrics,
            timeline: None,
            idle: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// A warm instance, or a fresh one whose init has completed. Lambda's
    /// Init phase has a limit of its own and does not count against the
    /// function's `Timeout` (AWS, "Understanding the Lambda execution
    /// environment lifecycle": the Init phase is limited to 10 seconds; if
    /// it does not finish, Lambda retries it at the first invocation with
    /// the configured function timeout). The emulator does not restart the
    /// process for that retry: init gets the two budgets in one go.
    pub(crate) async fn prepare(self: &Arc<Self>) -> Result<Prepared, InvokeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(instance) = self.warm(generation) {
            return Ok(Prepared {
                pid: instance.pid(),
                instance,
                generation,
                trace_id: trace_id(&request_id),
                request_id,
                cold: false,
            });
        }
        let mut instance = self.start(&request_id).await?;
        let limit = INIT_LIMIT + self.timeout;
        match tokio::time::timeout(limit, instance.wait_init()).await {
            Ok(Ok(())) => {}
            Ok(Err(InstanceError::Function(e))) => return Err(e),
            Ok(Err(InstanceError::Exited(status))) => {
                return Err(InvokeError {
                    error_type: "Runtime.ExitError".into(),
                    error_message: format!(
                        "RequestId: {request_id} Error: Runtime exited during init: {status}"
                    ),
                });
            }
            Err(_) => {
                tracing::warn!(function = %self.name, request_id, limit_s = limit.as_secs_f64(), "init did not finish within Lambda's init limit");
                return Err(InvokeError {
                    error_type: "Runtime.InitTimeout".into(),
                    error_message: format!(
                        "INIT did not complete within {:.2} seconds",
                        limit.as_secs_f64()
                    ),
                });
            }
        }
        if let Some(init) = instance.init {
            self.metrics.function_init(&self.name, init);
        }
        Ok(Prepared {
            pid: instance.pid(),
            instance,
            generation,
            trace_id: trace_id(&request_id),
            request_id,
            cold: true,
        })
    }

    /// One invocation with a JSON event and response, on a prepared
    /// instance.
    pub(crate) fn invoke_json(
        self: Arc<Self>,
        prepared: Prepared,
        event: Value,
        context: InvokeContext,
    ) -> InvokeFuture {
        Box::pin(async move {
            let body = self
                .invoke(prepared, Bytes::from(event.to_string()), context)
                .await?;
            serde_json::from_slice(&body).map_err(|e| InvokeError {
                error_type: "Runtime.InvalidResponse".into(),
                error_message: format!("the function's response is not JSON: {e}"),
            })
        })
    }

    /// Runs one invocation on a prepared instance.
    pub(crate) async fn invoke(
        self: &Arc<Self>,
        prepared: Prepared,
        event: Bytes,
        context: InvokeContext,
    ) -> Result<Bytes, InvokeError> {
        let Prepared {
            instance,
            generation,
            request_id,
            trace_id,
            ..
        } = prepared;
        // Dropped with the future on a timeout: the instance's own drop
        // kills its process, and this says why.
        let mut note = TimeoutNote {
            function: &self.name,
            request_id: &request_id,
            timeout: self.timeout,
            armed: true,
        };
        let mut instance = instance;
        let started = Instant::now();
        let work = Work {
            trace_id,
            request_id: request_id.clone(),
            event,
            deadline_ms: deadline_ms(self.timeout),
            client_context: context.client_context,
            cognito_identity: context.cognito_identity,
        };
        let outcome = instance.invoke(work, context.crash_after).await;
        note.armed = false;
        self.metrics
            .function_duration(&self.name, started.elapsed());
        match outcome {
            Ok(body) => {
                self.release(generation, instance);
                Ok(body)
            }
            Err(InstanceError::Function(e)) => {
                // An init error ends the instance; a handled error does not.
                if instance.init.is_some() {
                    self.release(generation, instance);
                }
                Err(e)
            }
            Err(InstanceError::Exited(status)) => {
                tracing::warn!(function = %self.name, request_id, %status, "the function's process exited mid-invocation; the next invocation starts a fresh one");
                Err(InvokeError {
                    error_type: "Runtime.ExitError".into(),
                    error_message: format!(
                        "RequestId: {request_id} Error: Runtime exited with error: {status}"
                    ),
                })
            }
        }
    }

    /// Back to the warm pool, unless a reload happened meanwhile (then it
    /// is dropped, which stops its process).
    fn release(&self, generation: u64, instance: Instance) {
        if generation == self.generation.load(Ordering::Acquire) {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((generation, instance));
        }
    }

    /// New code: later invocations start fresh instances; the ones running
    /// now finish on the old code. Returns how many warm instances stopped.
    pub(crate) fn reload(&self) -> usize {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        stale.len()
    }

    fn warm(&self, generation: u64) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((g, i)) = idle.pop() {
            if g == generation && i.alive() {
                return Some(i);
            }
        }
        None
    }

    async fn start(&self, request_id: &str) -> Result<Instance, InvokeError> {
        let output = Output {
            label: self.name.clone(),
            timeline: self.timeline.clone(),
        };
        Instance::start(&self.launch, self.env.clone(), self.arn.clone(), output)
            .await
            .map_err(|e| {
                tracing::error!(function = %self.name, request_id, error = %e, "cannot start the function");
                InvokeError {
                    error_type: "Runtime.InvalidEntrypoint".into(),
                    error_message: e.to_string(),
                }
            })
    }

    /// Prepares an instance and runs one invocation on it (tests).
    #[cfg(test)]
    pub(crate) async fn call(
        self: &Arc<Self>,
        event: Bytes,
        context: InvokeContext,
    ) -> Result<Bytes, InvokeError> {
        let prepared = self.prepare().await?;
        self.invoke(prepared, event, context).await
    }

    /// Instances currently warm and idle.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Logs Lambda's timeout line if the invocation is cancelled before it
/// ends (the caller's timeout dropped it; the instance died with it).
struct TimeoutNote<'a> {
    function: &'a str,
    request_id: &'a str,
    timeout: Duration,
    armed: bool,
}

impl Drop for TimeoutNote<'_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                function = self.function,
                request_id = self.request_id,
                "Task timed out after {:.2} seconds; its instance is stopped and the next invocation starts a fresh one",
                self.timeout.as_secs_f64()
            );
        }
    }
}

fn deadline_ms(timeout: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(now + timeout.as_millis()).unwrap_or(i64::MAX)
}
