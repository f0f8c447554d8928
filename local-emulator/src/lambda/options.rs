//! Lambda's settings: how functions run, their concurrency, and the
//! asynchronous queue's retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use crate::lambda::registry::{FunctionPlugin, Handlers};

/// The cargo profile of this build: what process functions run by default,
/// so a `cargo run --release` emulator runs release binaries, reusing the
/// crates its own build compiled.
const OWN_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// How Lambda behaves. Every field is a `roomcast dev` flag, or (`skip`) a
/// setting only code changes.
#[derive(Args, Clone)]
pub struct LambdaOptions {
    /// Concurrent invocations per function (Lambda's concurrency limit; a
    /// function's ReservedConcurrentExecutions wins). Emulator choice, sized
    /// for a laptop: 16 (AWS's account default is 1,000).
    #[arg(long, default_value_t = 16)]
    pub max_concurrency: usize,
    /// How the functions the emulator has in-process handlers for run:
    /// `in-process` (fast, no build, the memory store works) or `process`
    /// (each as its real binary behind the Lambda Runtime API; needs
    /// --dynamodb-endpoint). Other functions always run as processes.
    #[arg(long, value_enum, default_value = "in-process")]
    pub functions: FunctionsMode,
    /// Run `cargo build` for process functions at start-up, even when
    /// their binary exists (otherwise built only when missing).
    #[arg(long)]
    pub build: bool,
    /// Hot reload: when a process function's binary or source changes,
    /// rebuild it and start new instances; in-flight invocations finish on
    /// the old ones and WebSocket connections stay open.
    #[arg(long)]
    pub watch: bool,
    /// The cargo profile whose binaries process functions run (`debug`,
    /// `release`, or a custom one: `target/<profile>/`). By default the
    /// emulator's own.
    #[arg(long, default_value = OWN_PROFILE)]
    pub cargo_profile: String,
    /// The Python interpreter for python3.x functions (needs PyPI's
    /// awslambdaric).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Check every AWS call a process function makes through the emulator
    /// against its execution role in the template, as IAM would, and give
    /// each function credentials of its own. `--no-iam` turns it off
    /// (functions then get the emulator's own credentials).
    #[arg(
        long = "no-iam",
        action = ArgAction::SetFalse,
        help = "Do not check process functions' AWS calls against their execution roles. By default each function gets credentials of its own, and a call its role in the template does not allow is refused with AccessDeniedException, as IAM refuses it in AWS"
    )]
    pub iam: bool,
    /// After a failed `Event` invocation, Lambda retries after about one
    /// minute, then two: 60s (the second retry waits twice this).
    #[arg(skip = Duration::from_secs(60))]
    pub async_retry_base: Duration,
    /// In-process handlers given one by one, by binary name (your own Rust
    /// handlers, tests' probes); consulted before the plug-ins.
    #[arg(skip)]
    pub handlers: Handlers,
    /// Plug-ins whose functions run in the emulator's process (the
    /// `roomcast` binary hands Roomcast's own,
    /// `crate::plugins::roomcast::functions`). Their functions are given the
    /// settings the emulator provides (`ROOMCAST_*`, the dev secret), and a
    /// template with one of them is served as Roomcast's (the demo, dev
    /// tokens). Default none.
    #[arg(skip)]
    pub plugins: Vec<Arc<dyn FunctionPlugin>>,
}

/// How the functions with in-process handlers are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FunctionsMode {
    /// In the emulator's process: no build, the memory store works.
    #[default]
    InProcess,
    /// Every function as its real binary behind the Runtime API; they share
    /// state through DynamoDB only, so a DynamoDB endpoint is required.
    Process,
}

impl Default for LambdaOptions {
    fn default() -> Self {
        Self {
            max_concurrency: 16,
            functions: FunctionsMode::InProcess,
            build: false,
            watch: false,
            cargo_profile: OWN_PROFILE.into(),
            python: PathBuf::from("python3"),
            iam: true,
            async_retry_base: Duration::from_secs(60),
            handlers: Handlers::default(),
            plugins: Vec::new(),
        }
    }
}

impl std::fmt::Debug for LambdaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaOptions")
            .field("max_concurrency", &self.max_concurrency)
            .field("functions", &self.functions)
            .field("build", &self.build)
            .field("watch", &self.watch)
            .field("cargo_profile", &self.cargo_profile)
            .field("python", &self.python)
            .field("iam", &self.iam)
            .field("async_retry_base", &self.async_retry_base)
            .field("handlers", &self.handlers.0.keys().collect::<Vec<_>>())
            .field(
                "plugins",
                &self
                    .plugins
                    .iter()
                    .map(|p| p.binaries())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
