//! One execution environment: a process, its own Runtime API listener and
//! the sandbox between them. It runs one invocation at a time; it is
//! reused while warm and thrown away when it times out, crashes or fails
//! its init, as Lambda does with its sandboxes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::process::{Launch, Output, Process, SpawnError};
use super::runtime_api;
use super::sandbox::{Invocation, Reply, Sandbox, Work};
use crate::lambda::registry::InvokeError;

/// How an invocation on an instance ended, when it did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InstanceError {
    /// The function answered with an error (`/error`), or failed its init
    /// (`/init/error`, then the instance is discarded).
    #[error(transparent)]
    Function(InvokeError),
    /// The process exited before answering: the instance is discarded and
    /// the next invocation starts a fresh one.
    #[error("Runtime exited with error: {0}")]
    Exited(String),
}

/// Why an instance could not be started at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// No port for its Runtime API.
    #[error("cannot open a Runtime API port: {0}")]
    Listen(std::io::Error),
    /// The program could not be run (missing, not executable).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// A started execution environment.
#[derive(Debug)]
pub(crate) struct Instance {
    sandbox: Arc<Sandbox>,
    feed: tokio::sync::mpsc::Sender<Invocation>,
    process: Process,
    server: JoinHandle<()>,
    serving: watch::Sender<Option<String>>,
    started: Instant,
    /// Init duration, once known (the first `/next`).
    pub(crate) init: Option<Duration>,
}

impl Instance {
    /// Opens a Runtime API on 127.0.0.1 and starts `launch` against it.
    /// `env` gets `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) async fn start(
        launch: &Launch,
        mut env: BTreeMap<String, String>,
        function_arn: String,
        output: Output,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(StartError::Listen)?;
        let addr = listener.local_addr().map_err(StartError::Listen)?;
        let (sandbox, feed) = Sandbox::new(function_arn);
        let sandbox = Arc::new(sandbox);
        let app = runtime_api::router(sandbox.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), addr.to_string());
        let (serving, serving_rx) = watch::channel(None);
        let started = Instant::now();
        let process = match Process::spawn(launch, &env, output, serving_rx) {
            Ok(p) => p,
            Err(e) => {
                server.abort();
                return Err(e.into());
            }
        };
        Ok(Self {
            sandbox,
            feed,
            process,
            server,
            serving,
            started,
            init: None,
        })
    }

    /// The process's OS id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.pid
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&self) -> bool {
        !self.process.has_exited()
    }

    /// Runs one invocation; on the first one, waits for init as well.
    /// With `crash_after`, the process is killed that long after its
    /// runtime takes the event (unless it answers first).
    pub(crate) async fn invoke(
        &mut self,
        work: Work,
        crash_after: Option<Duration>,
    ) -> Result<Bytes, InstanceError> {
        if self.init.is_none() {
            self.wait_init().await?;
        }
        let (reply, answered) = oneshot::channel();
        self.serving.send_replace(Some(work.request_id.clone()));
        let mut taken = self.sandbox.taken();
        taken.borrow_and_update();
        let invocation = Invocation { work, reply };
        let outcome = tokio::select! {
            sent = self.feed.send(invocation) => match sent {
                Ok(()) => self.answer_or_crash(answered, taken, crash_after).await,
                Err(_) => Err(InstanceError::Exited("the sandbox is closed".into())),
            },
            status = self.process.exited() => Err(exited(status)),
        };
        self.serving.send_replace(None);
        outcome
    }

    async fn answer_or_crash(
        &mut self,
        answered: oneshot::Receiver<Reply>,
        mut taken: watch::Receiver<u64>,
        crash_after: Option<Duration>,
    ) -> Result<Bytes, InstanceError> {
        let Some(after) = crash_after else {
            return self.answer(answered).await;
        };
        let crash = async {
            if taken.changed().await.is_ok() {
                tokio::time::sleep(after).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            answer = self.answer(answered) => return answer,
            () = crash => {}
        }
        tracing::warn!(
            after_ms = after.as_millis() as u64,
            "injected invoke-crash: killing the function's process mid-invocation"
        );
        self.process.kill();
        Err(exited(self.process.exited().await))
    }

    async fn answer(&self, answered: oneshot::Receiver<Reply>) -> Result<Bytes, InstanceError> {
        tokio::select! {
            reply = answered => match reply {
                Ok(Reply::Response(body)) => Ok(body),
                Ok(Reply::Error(e)) => Err(InstanceError::Function(e)),
                Err(_) => Err(InstanceError::Exited("the sandbox dropped the invocation".into())),
            },
            status = self.process.exited() => Err(exited(status)),
        }
    }

    /// Init ends at the first `/next`; `/init/error` or an exit fails it.
    pub(crate) async fn wait_init(&mut self) -> Result<(), InstanceError> {
        let mut ready = self.sandbox.ready();
        let mut init_error = self.sandbox.init_error();
        tokio::select! {
            _ = ready.wait_for(|r| *r) => {
                self.init = Some(self.started.elapsed());
                Ok(())
            }
            e = init_error.wait_for(Option::is_some) => {
                let e = e.ok().and_then(|e| e.clone()).unwrap_or_else(|| InvokeError {
                    error_type: "Runtime.Unknown".into(),
                    error_message: "init failed".into(),
                });
                Err(InstanceError::Function(e))
            }
            status = self.process.exited() => Err(exited(status)),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.process.kill();
        self.server.abort();
    }
}

fn exited(status: Option<std::process::ExitStatus>) -> InstanceError {
    InstanceError::Exited(match status {
        Some(s) => lambda_status(s),
        None => "unknown status".into(),
    })
}

/// An exit as Lambda words it in `Runtime exited with error: …` (its
/// service is written in Go, so the words are Go's): `exit status 7`,
/// `signal: killed` for SIGKILL (a timeout or the memory limit). AWS does
/// not document the text; these are the ones its logs show.
pub(crate) fn lambda_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        11 => "segmentation fault",
        13 => "broken pipe",
        15 => "terminated",
        n => return format!("signal {n}"),
    };
    format!("signal: {name}")
}

/// An X-Ray trace header for one invocation: `Root=1-<epoch hex>-<24 hex>`.
pub(crate) fn trace_id(request_id: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let hex: String = request_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(24)
        .collect();
    format!("Root=1-{secs:08x}-{hex};Sampled=0")
}
