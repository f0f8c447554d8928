//! A function's process: started with exactly the environment Lambda would
//! give it, its output shown line by line with the function name and the
//! request id it was serving, its exit observed, and killed on demand.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use crate::timeline::Timeline;

/// A line longer than this is shown cut (a handler printing megabytes
/// without a newline must not grow the emulator's memory).
const MAX_LINE_BYTES: usize = 16 * 1024;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    /// `LAMBDA_TASK_ROOT`, and the working directory.
    pub(crate) task_root: PathBuf,
    /// Variables the emulator's runtime adds (the template's win).
    pub(crate) env: Vec<(String, String)>,
}

/// Why a process could not start. The emulator names the function and
/// says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {program}: {source}")]
pub(crate) struct SpawnError {
    pub(crate) program: String,
    pub(crate) source: std::io::Error,
}

/// Where a function's output goes: the emulator's log, prefixed with
/// the function's name, and the inspector's timeline while one watches.
#[derive(Clone, Debug)]
pub(crate) struct Output {
    pub(crate) label: Arc<str>,
    pub(crate) timeline: Option<Arc<Timeline>>,
}

/// A running (or exited) process.
#[derive(Debug)]
pub(crate) struct Process {
    exited: watch::Receiver<Option<ExitStatus>>,
    kill: Option<oneshot::Sender<()>>,
    /// The OS's process id (none once it could not be read).
    pub(crate) pid: Option<u32>,
}

impl Process {
    /// Starts `command` with `env` only (nothing of the emulator's own
    /// environment leaks in). Its output goes to `output`; `serving` says
    /// which request id it is working on, for each line.
    pub(crate) fn spawn(
        command: &Launch,
        env: &BTreeMap<String, String>,
        output: Output,
        serving: watch::Receiver<Option<String>>,
    ) -> Result<Self, SpawnError> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .env_clear()
            .envs(env)
            .current_dir(&command.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SpawnError {
                program: command.program.display().to_string(),
                source,
            })?;
        let pid = child.id();
        let source = Source {
            output,
            pid,
            serving,
        };
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(out, source.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(err, source));
        }
        let (exited_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        tokio::spawn(reap(child, exited_tx, kill_rx));
        Ok(Self {
            exited,
            kill: Some(kill),
            pid,
        })
    }

    /// Waits until the process exits.
    pub(crate) async fn exited(&self) -> Option<ExitStatus> {
        let mut rx = self.exited.clone();
        let status = rx.wait_for(Option::is_some).await.ok()?;
        *status
    }

    /// Whether it has exited already.
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }

    /// Kills it (SIGKILL, as Lambda does on a timeout).
    pub(crate) fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Owns the child: reports its exit, or kills it when asked (or when the
/// `Process` is dropped).
async fn reap(
    mut child: Child,
    exited: watch::Sender<Option<ExitStatus>>,
    kill: oneshot::Receiver<()>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    if let Ok(status) = status {
        exited.send_replace(Some(status));
    }
}

/// One process's output stream and what its lines are tagged with.
#[derive(Clone)]
struct Source {
    output: Output,
    pid: Option<u32>,
    /// The request id being served (none: init).
    serving: watch::Receiver<Option<String>>,
}

/// Shows each output line as `[function request-id] line` through tracing,
/// and on the timeline while an inspector watches.
async fn forward(mut from: impl AsyncRead + Unpin, source: Source) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                show(&source, &line, cut);
                line.clear();
                cut = false;
            } else if line.len() < MAX_LINE_BYTES {
                line.push(b);
            } else {
                cut = true;
            }
        }
    }
    if !line.is_empty() {
        show(&source, &line, cut);
    }
}

fn show(source: &Source, line: &[u8], cut: bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    let serving = source.serving.borrow().clone();
    let request_id = serving.as_deref().unwrap_or("init");
    let more = if cut { " …(cut)" } else { "" };
    let label = &source.output.label;
    tracing::info!(target: "function", "[{label} {request_id}] {text}{more}");
    if let Some(timeline) = source.output.timeline.as_ref().filter(|t| t.watching()) {
        timeline.record_now(
            "log",
            serde_json::json!({
                "function": &**label,
                "lambdaRequestId": serving,
                "pid": source.pid,
                "line": format!("{}{more}", crate::timeline::excerpt(text, 1024)),
            }),
        );
    }
}
