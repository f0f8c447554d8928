//! An API Gateway WebSocket emulator that runs Roomcast's Lambda handlers
//! in-process, from `template.yaml`, with API Gateway's behaviour
//! (DESIGN.md §2).
//!
//! Layout, after cargo-lambda's watch crate:
//! - [`template`]: reads routes, authorizer, stage, functions, table;
//! - [`config`]: settings with API Gateway's defaults;
//! - `state`: what the running emulator holds; `invoke`: the handler invoker;
//! - `server`: the accept loop and HTTP routes (`/healthz`, `/metrics`,
//!   `/dev/token`, static files); `upgrade`: authorizer + `$connect` before
//!   the 101; `socket`: one connection's frames, limits and timers;
//!   `management`: the `@connections` API;
//! - `connections`, `events`, `metrics`, `util`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

mod activity;
pub mod apigateway;
pub mod config;
pub mod dev_secret;
mod dynamodb;
mod error;
pub mod eventbridge;
pub mod faults;
mod guard;
mod header_case;
mod http;
mod iam;
mod inspector;
pub mod lambda;
mod metrics;
pub mod private_dir;
mod routes;
mod server;
pub mod sigv4;
mod state;
pub mod template;
mod timefmt;
mod timeline;
pub mod tls;

pub use config::{EmulatorConfig, FunctionsMode};
pub use error::EmulatorError;
pub use state::local_sdk_config;

/// URLs of a running emulator.
#[derive(Clone, Debug)]
pub struct Urls {
    /// Where WebSocket clients connect.
    pub websocket: String,
    /// The Management API endpoint for SDK clients (`endpoint_url`).
    pub management: String,
    /// The inspector's page.
    pub inspector: String,
    /// The demo page (Roomcast's own template only: it speaks Roomcast's
    /// protocol).
    pub demo: Option<String>,
    /// Dev tokens (Roomcast's own template, with `dev`).
    pub dev_token: Option<String>,
    /// Roomcast's own template (with its events' bus) or a team's.
    pub profile: template::Profile,
}

/// A bound, initialised emulator.
pub struct Emulator {
    state: Arc<state::State>,
    listener: TcpListener,
}

impl Emulator {
    /// Loads the template, binds the address and initialises every function.
    pub async fn bind(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.addr,
                source,
            })?;
        let state = state::State::build(config, addr).await?;
        Ok(Self { state, listener })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// The URLs to print.
    pub fn urls(&self) -> Urls {
        self.state.urls()
    }

    /// Serves until `shutdown` completes, then closes every socket with
    /// 1001, runs `$disconnect` for each (time-bounded) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        server::serve(self.state, self.listener, shutdown).await;
    }

    /// Runs in the background (tests): dropping or calling
    /// [`RunningEmulator::shutdown`] stops it.
    pub fn spawn(self) -> RunningEmulator {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = self.local_addr();
        let urls = self.urls();
        let denials = AccessDenials(self.state.iam.clone());
        let task = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningEmulator {
            addr,
            urls,
            denials,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// The AWS calls of process functions that their roles refused (the
/// emulator checks them as IAM would, `--no-iam` aside): for tests that
/// assert a scenario needs no right its template does not grant. It
/// outlives the emulator.
#[derive(Clone)]
pub struct AccessDenials(Option<Arc<iam::Iam>>);

impl AccessDenials {
    /// How many calls were refused.
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |i| i.denials())
    }

    /// The latest refusals (at most 32), each `function: message`.
    pub fn recent(&self) -> Vec<String> {
        self.0.as_ref().map(|i| i.recent()).unwrap_or_default()
    }
}

impl std::fmt::Debug for AccessDenials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessDenials")
            .field("count", &self.count())
            .finish()
    }
}

/// An emulator running in the background.
pub struct RunningEmulator {
    /// Its address.
    pub addr: SocketAddr,
    /// Its URLs.
    pub urls: Urls,
    denials: AccessDenials,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// The calls its process functions' roles refused.
    pub fn access_denials(&self) -> AccessDenials {
        self.denials.clone()
    }

    /// Shuts down gracefully and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator").finish_non_exhaustive()
    }
}
