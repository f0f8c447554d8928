//! `roomcast dev`: any SAM template's WebSocket API offline, with API
//! Gateway's, Lambda's and EventBridge's behaviour (DESIGN.md §2, §5).
//!
//! One folder per AWS service, each owning its state and its part of the
//! template, as moto and LocalStack are laid out: [`apigateway`]
//! (connections, routes, the authorizer, `@connections`), [`lambda`]
//! (functions, instances, the Runtime and Invoke APIs, the async queue),
//! [`eventbridge`] (buses, rules, targets), `dynamodb` (the store, the
//! pass-through); `faults`, `inspector` and `timeline` are the developer's
//! tools across them; `server` is the port they share. `compose` builds
//! them from the [`config`] groups and wires them by small handles
//! (EventBridge reaches Lambda through `eventbridge::LambdaTarget`).
//! docs/architecture.md draws the picture.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

mod activity;
pub mod apigateway;
pub mod cli_values;
mod compose;
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
pub mod plugins;
pub mod private_dir;
mod sdk;
mod server;
pub mod sigv4;
pub mod template;
mod timefmt;
mod timeline;
pub mod tls;

pub use config::{
    DevOptions, DynamoDbOptions, EmulatorConfig, FunctionsMode, GatewayMode, GatewayOptions,
    LambdaOptions, ServerOptions, TemplateOptions,
};
pub use error::EmulatorError;
pub use sdk::local_sdk_config;

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
    built: compose::Built,
    addr: SocketAddr,
    dev_tokens: bool,
    listener: TcpListener,
}

impl Emulator {
    /// Loads the template, binds the address and initialises every function.
    pub async fn bind(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let wanted = config.server.addr();
        let bind_error = |source| EmulatorError::Bind {
            addr: wanted,
            source,
        };
        let listener = TcpListener::bind(wanted).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let dev_tokens = config.dev.dev;
        let built = compose::build(config, addr).await?;
        Ok(Self {
            built,
            addr,
            dev_tokens,
            listener,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URLs to print.
    pub fn urls(&self) -> Urls {
        let base = format!("http://{}", self.addr);
        let own = matches!(self.built.profile, template::Profile::Roomcast { .. });
        Urls {
            websocket: format!("ws://{}/{}", self.addr, self.built.stage),
            management: format!("{base}/{}", self.built.stage),
            inspector: format!("{base}/_roomcast/"),
            demo: own.then(|| format!("{base}/")),
            dev_token: (own && self.dev_tokens)
                .then(|| format!("{base}/dev/token?user=alice&name=Alice")),
            profile: self.built.profile.clone(),
        }
    }

    /// Serves until `shutdown` completes, then closes every socket with
    /// 1001, runs `$disconnect` for each (time-bounded) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let Self {
            built, listener, ..
        } = self;
        let compose::Built {
            server,
            _dynamodb_proxy: proxy,
            ..
        } = built;
        server::serve(server, listener, shutdown).await;
        drop(proxy);
    }

    /// Runs in the background (tests): dropping or calling
    /// [`RunningEmulator::shutdown`] stops it.
    pub fn spawn(self) -> RunningEmulator {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = self.local_addr();
        let urls = self.urls();
        let denials = AccessDenials(self.built.iam.clone());
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
