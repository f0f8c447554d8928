//! Init-time wiring: read the environment once, build SDK clients once.
//!
//! Lambda mains call [`AppBuilder::from_env`]; the emulator passes the
//! template's environment through [`AppBuilder::new`] instead.

use std::sync::Arc;
use std::time::Duration;

use super::{App, Gateways};
use crate::auth::{JwksCache, OriginPolicy, TokenVerifier, VerifierOptions, Verify};
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, optional};
use crate::dispatch::LambdaDispatch;
use crate::dynamodb::{self, DynamoStore, StoreOptions};
use crate::eventbridge::{EventBridgeEvents, EventsConfig};
use crate::events::Events;
use crate::gateway::Gateway;
use crate::management::ManagementApi;
use crate::shard::Dispatch;
use crate::store::Store;

/// Why a function could not start. Fix the deployment and redeploy.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HS256 secret could not be read from SSM Parameter Store. Check
    /// the parameter name and the function's `ssm:GetParameter` permission.
    #[error("could not read the JWT secret from SSM parameter {name}: {reason}")]
    Secret {
        /// The parameter name.
        name: String,
        /// What SSM said.
        reason: String,
    },
}

/// How to format logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the emulator's default).
    Human,
    /// One JSON object per line (Lambda, `--log-format json`).
    Json,
}

/// Installs the global tracing subscriber, writing to stderr (stdout is for
/// command output and EMF lines; Lambda ships both streams to CloudWatch).
/// The level comes from `RUST_LOG`, else `ROOMCAST_LOG_LEVEL`, else `info`.
/// Safe to call twice.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            EnvFilter::try_new(
                std::env::var("ROOMCAST_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            )
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // CloudWatch stamps every line; JSON keeps span fields queryable.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_ansi(false)
            .try_init(),
        // Colour only for a person at a terminal: a log redirected to a
        // file or read by a test has no escape codes (and NO_COLOR wins).
        LogFormat::Human => builder
            .with_ansi(colour(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            ))
            .try_init(),
    };
}

/// Whether human logs are coloured: on a terminal, unless `NO_COLOR` is
/// set to anything (no-color.org).
fn colour(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds an [`App`] from settings.
pub struct AppBuilder {
    lookup: Lookup,
    sdk: aws_config::SdkConfig,
    store: Option<Arc<dyn Store>>,
    gateway: Option<Arc<dyn Gateway>>,
    dispatch: Option<Arc<dyn Dispatch>>,
}

impl AppBuilder {
    /// Reads the process environment and the default AWS configuration.
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Arc::new(|k: &str| std::env::var(k).ok()), sdk)
    }

    /// Uses `lookup` for settings and `sdk` for AWS clients.
    pub fn new(lookup: Lookup, sdk: aws_config::SdkConfig) -> Self {
        Self {
            lookup,
            sdk,
            store: None,
            gateway: None,
            dispatch: None,
        }
    }

    /// Uses this store instead of building one (the emulator's shared store).
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this gateway instead of the Management API (the emulator's
    /// optional in-process fast path).
    pub fn with_gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    fn get(&self, var: &str) -> Option<String> {
        optional(&*self.lookup, var)
    }

    /// Limits and knobs.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_lookup(&*self.lookup)
    }

    /// The `Origin` allowlist (`ROOMCAST_ALLOWED_ORIGINS`).
    pub fn origins(&self) -> OriginPolicy {
        OriginPolicy::parse(&self.get("ROOMCAST_ALLOWED_ORIGINS").unwrap_or_default())
    }

    /// The token verifier: `ROOMCAST_JWKS_URL`, or an HS256 secret from
    /// `ROOMCAST_JWT_SECRET_PARAM` (an SSM SecureString name) or, for
    /// development, `ROOMCAST_JWT_SECRET`.
    pub async fn verifier(&self) -> Result<Arc<dyn Verify>, InitError> {
        let leeway = self.config()?.token_leeway_secs;
        let options = VerifierOptions {
            issuer: self.get("ROOMCAST_JWT_ISSUER"),
            audience: self.get("ROOMCAST_JWT_AUDIENCE"),
            leeway_secs: leeway,
        };
        if let Some(url) = self.get("ROOMCAST_JWKS_URL") {
            let cache = JwksCache::new(url, Duration::from_secs(600));
            return Ok(Arc::new(TokenVerifier::jwks(cache, options)));
        }
        if let Some(name) = self.get("ROOMCAST_JWT_SECRET_PARAM") {
            let secret = self.ssm_secret(&name).await?;
            return Ok(Arc::new(TokenVerifier::hs256(secret.as_bytes(), options)));
        }
        if let Some(secret) = self.get("ROOMCAST_JWT_SECRET") {
            return Ok(Arc::new(TokenVerifier::hs256(secret.as_bytes(), options)));
        }
        Err(ConfigError::Missing {
            var: "ROOMCAST_JWKS_URL",
            hint: "set ROOMCAST_JWKS_URL, ROOMCAST_JWT_SECRET_PARAM or ROOMCAST_JWT_SECRET",
        }
        .into())
    }

    async fn ssm_secret(&self, name: &str) -> Result<String, InitError> {
        let client = aws_sdk_ssm::Client::new(&self.sdk);
        let fail = |reason: String| InitError::Secret {
            name: name.to_owned(),
            reason,
        };
        let out = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                fail(aws_smithy_types::error::display::DisplayErrorContext(e).to_string())
            })?;
        out.parameter()
            .and_then(|p| p.value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| fail("the parameter has no value".into()))
    }

    /// The store: the injected one, else DynamoDB table `ROOMCAST_TABLE`.
    pub fn store(&self) -> Result<Arc<dyn Store>, InitError> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        let table = self.get("ROOMCAST_TABLE").ok_or(ConfigError::Missing {
            var: "ROOMCAST_TABLE",
            hint: "the DynamoDB table name (template.yaml sets it)",
        })?;
        let endpoint = self.get("ROOMCAST_DYNAMODB_ENDPOINT");
        let client = dynamodb::client(&self.sdk, endpoint.as_deref());
        Ok(Arc::new(DynamoStore::new(
            client,
            table,
            StoreOptions::default(),
        )))
    }

    /// The Management API clients (`ROOMCAST_CALLBACK_URL` overrides the
    /// endpoint taken from events).
    pub fn gateways(&self) -> Gateways {
        if let Some(g) = &self.gateway {
            return Gateways::Fixed(g.clone());
        }
        Gateways::Management(Box::new(ManagementApi::new(
            self.sdk.clone(),
            self.get("ROOMCAST_CALLBACK_URL"),
        )))
    }

    /// A complete app without a token verifier: connect, disconnect,
    /// publish and fanout never verify a token (the authorizer did). A
    /// separate function from [`Self::app_verifying`] so that their
    /// binaries do not link the verifier and its JWKS client at all.
    pub async fn app(&self) -> Result<App, InitError> {
        let emf = self.emf();
        Ok(App {
            store: self.store()?,
            gateways: self.gateways(),
            verifier: None,
            clock: Arc::new(SystemClock),
            config: self.config()?,
            origins: self.origins(),
            emf,
            dispatch: self.dispatch(),
            events: self.events(emf),
            events_data: self.get("ROOMCAST_EVENTS_DATA").as_deref() != Some("false"),
        })
    }

    /// A complete app with the token verifier: the message function needs
    /// it for `auth` (a token refreshed mid-connection).
    pub async fn app_verifying(&self) -> Result<App, InitError> {
        let verifier = self.verifier().await?;
        Ok(App {
            verifier: Some(verifier),
            ..self.app().await?
        })
    }

    /// Whether to write EMF metric lines: only where CloudWatch reads
    /// stdout (in Lambda), unless `ROOMCAST_EMF=0`.
    pub fn emf(&self) -> bool {
        self.get("AWS_LAMBDA_FUNCTION_NAME").is_some()
            && self.get("ROOMCAST_EMF").as_deref() != Some("0")
    }

    /// The events adapter: EventBridge bus `ROOMCAST_EVENT_BUS` (source
    /// `ROOMCAST_EVENT_SOURCE`, default `roomcast`), reached at
    /// `AWS_ENDPOINT_URL_EVENTBRIDGE` when set (the emulator). `None`
    /// without a bus: events off, no client built, no call ever made.
    pub fn events(&self, emf: bool) -> Option<Arc<dyn Events>> {
        let bus = self.get("ROOMCAST_EVENT_BUS")?;
        let mut config = EventsConfig::new(bus);
        if let Some(source) = self.get("ROOMCAST_EVENT_SOURCE") {
            config.source = source;
        }
        let endpoint = self.get("AWS_ENDPOINT_URL_EVENTBRIDGE");
        let metrics = super::metrics_sink(emf);
        Some(Arc::new(EventBridgeEvents::new(
            &self.sdk,
            config,
            endpoint.as_deref(),
            metrics,
        )))
    }

    /// Uses this dispatcher instead of building one (tests).
    pub fn with_dispatch(mut self, dispatch: Arc<dyn Dispatch>) -> Self {
        self.dispatch = Some(dispatch);
        self
    }

    /// The `fanout` function's dispatcher: `ROOMCAST_FANOUT_FUNCTION` (a
    /// name or ARN), reached at `AWS_ENDPOINT_URL_LAMBDA` when set (the
    /// emulator). `None` without it: every fan-out is inline.
    pub fn dispatch(&self) -> Option<Arc<dyn Dispatch>> {
        if let Some(d) = &self.dispatch {
            return Some(d.clone());
        }
        let function = self.get("ROOMCAST_FANOUT_FUNCTION")?;
        let endpoint = self.get("AWS_ENDPOINT_URL_LAMBDA");
        Some(Arc::new(LambdaDispatch::new(
            &self.sdk,
            function,
            endpoint.as_deref(),
        )))
    }
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder").finish_non_exhaustive()
    }
}
