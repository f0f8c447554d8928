//! In-process handlers: what a function the emulator runs in its own
//! process is (JSON in, JSON or Lambda's error out), and the plug-ins that
//! provide them by binary name, handed in at start-up (the `roomcast`
//! binary hands Roomcast's own, `crate::plugins::roomcast`). The emulator
//! knows no function by heart.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::gateway::Gateway;
use roomcast_core::store::Store;
use serde_json::Value;

/// A failed invocation, as Lambda would report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {error_message}")]
pub struct InvokeError {
    /// Lambda's `errorType`.
    pub error_type: String,
    /// Lambda's `errorMessage`.
    pub error_message: String,
}

impl InvokeError {
    /// Whether a REQUEST authorizer refused with API Gateway's documented
    /// signal: failing with the error message `Unauthorized`, which API
    /// Gateway answers with 401 instead of 500. This is the wire contract
    /// between any authorizer and API Gateway, not our own error text.
    pub fn is_unauthorized(&self) -> bool {
        self.error_message == "Unauthorized"
    }
}

/// The future an invocation returns.
pub type InvokeFuture = Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send>>;

/// One function, ready to invoke with a JSON event.
pub type Handler = Arc<dyn Fn(Value) -> InvokeFuture + Send + Sync>;

/// A function's environment variables, by name.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What an in-process function is built with at init: its environment and
/// the parts the emulator shares with it.
#[derive(Clone)]
pub struct Setup {
    /// The function's environment: the emulator process's own variables
    /// first, then the template's, then what the emulator injects.
    pub env: Environment,
    /// SDK settings for its AWS clients.
    pub sdk: aws_config::SdkConfig,
    /// The store every in-process function shares (and the inspector reads).
    pub store: Arc<dyn Store>,
    /// The in-process gateway, when chosen (`--gateway in-process`).
    pub gateway: Option<Arc<dyn Gateway>>,
    /// The function's timeout, from which each invocation's deadline is
    /// taken, as Lambda's context gives it.
    pub timeout: Duration,
}

/// Why a plug-in could not build a function's handler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The future a build returns.
pub type BuildFuture = Pin<Box<dyn Future<Output = Result<Handler, BuildError>> + Send>>;

/// Functions the emulator runs in its own process, by binary name
/// (`Metadata.BuildProperties.Binary`).
pub trait FunctionPlugin: Send + Sync {
    /// The binaries it provides.
    fn binaries(&self) -> Vec<String>;
    /// Builds `binary`'s handler as its Lambda `main` would at init; `None`
    /// for a binary it does not provide.
    fn build(&self, binary: &str, setup: Setup) -> Option<BuildFuture>;
}

/// Handlers given one by one (`EmulatorConfig::handler`): each is used as
/// it is, whatever the setup.
#[derive(Clone, Default)]
pub struct Handlers(pub BTreeMap<String, Handler>);

impl FunctionPlugin for Handlers {
    fn binaries(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn build(&self, binary: &str, _: Setup) -> Option<BuildFuture> {
        let handler = self.0.get(binary)?.clone();
        Some(Box::pin(async move { Ok(handler) }))
    }
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("gateway", &self.gateway.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}
