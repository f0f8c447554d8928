//! The emulator's settings, grouped as its services are: each group is
//! its service's own struct with documented defaults (API Gateway's,
//! Lambda's, unless noted), and `roomcast dev`'s flags are these structs,
//! flattened (`#[command(flatten)]`): an option is added in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

pub use crate::apigateway::options::{GatewayMode, GatewayOptions};
pub use crate::dynamodb::options::DynamoDbOptions;
pub use crate::lambda::options::{FunctionsMode, LambdaOptions};
use crate::lambda::registry::{FunctionPlugin, Handler};
pub use crate::server::options::ServerOptions;
pub use crate::template::options::TemplateOptions;

/// How the emulator behaves. Build with [`EmulatorConfig::default`] and the
/// setters, or set a group's fields.
#[derive(Args, Clone, Debug, Default)]
pub struct EmulatorConfig {
    /// The template and its parameters.
    #[command(flatten)]
    pub template: TemplateOptions,
    /// The port: address, TLS, who is answered.
    #[command(flatten)]
    pub server: ServerOptions,
    /// API Gateway's limits and timeouts.
    #[command(flatten)]
    pub gateway: GatewayOptions,
    /// How functions run.
    #[command(flatten)]
    pub lambda: LambdaOptions,
    /// The memory store or DynamoDB.
    #[command(flatten)]
    pub dynamodb: DynamoDbOptions,
    /// Dev tokens and the inspector.
    #[command(flatten)]
    pub dev: DevOptions,
}

/// The developer's tools: dev tokens and the inspector's timeline.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct DevOptions {
    /// Serve `GET /dev/token` with tokens signed by the dev secret, and give
    /// functions that secret for the authorizer unless the environment sets
    /// another. `--no-dev` turns both off.
    #[arg(
        long = "no-dev",
        action = ArgAction::SetFalse,
        help = "Disable dev mode: no /dev/token, no dev JWT secret"
    )]
    pub dev: bool,
    /// The HS256 secret for dev tokens. Default: the installation's own,
    /// random, kept in `cache_dir/dev-secret` (mode 0600,
    /// `crate::dev_secret`). Never use a development secret in production.
    #[arg(skip)]
    pub dev_secret: Option<String>,
    /// Entries the inspector's timeline keeps (a ring: memory stays flat):
    /// 2000.
    #[arg(skip = crate::timeline::DEFAULT_TIMELINE)]
    pub timeline_size: usize,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            dev: true,
            dev_secret: None,
            timeline_size: crate::timeline::DEFAULT_TIMELINE,
        }
    }
}

/// Setters for the settings tests and embedders change most.
impl EmulatorConfig {
    /// Sets the listen address.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.server.host = addr.ip();
        self.server.port = addr.port();
        self
    }

    /// Sets the template path.
    pub fn template(mut self, path: impl Into<PathBuf>) -> Self {
        self.template.template = path.into();
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.gateway.idle_timeout = d;
        self
    }

    /// Sets the maximum connection duration.
    pub fn max_connection_duration(mut self, d: Duration) -> Self {
        self.gateway.max_connection_duration = d;
        self
    }

    /// Sets the integration timeout.
    pub fn integration_timeout(mut self, d: Duration) -> Self {
        self.gateway.integration_timeout = d;
        self
    }

    /// Sets the frame and message limits.
    pub fn size_limits(mut self, frame: usize, message: usize) -> Self {
        self.gateway.max_frame_bytes = frame;
        self.gateway.max_message_bytes = message;
        self
    }

    /// Sets the per-connection outbound queue bound.
    pub fn outbound_queue(mut self, frames: usize) -> Self {
        self.gateway.outbound_queue = frames.max(1);
        self
    }

    /// Sets the slow-consumer bound and the closing handshake's deadline.
    pub fn write_limits(mut self, write_timeout: Duration, close_timeout: Duration) -> Self {
        self.gateway.write_timeout = write_timeout;
        self.gateway.close_timeout = close_timeout;
        self
    }

    /// Sets the header-read timeout and the cap on pending handshakes.
    pub fn handshake_limits(mut self, header_read_timeout: Duration, max_pending: usize) -> Self {
        self.server.header_read_timeout = header_read_timeout;
        self.server.max_pending_handshakes = max_pending.max(1);
        self
    }

    /// Enables or disables dev mode.
    pub fn dev(mut self, dev: bool) -> Self {
        self.dev.dev = dev;
        self
    }

    /// Sets the static directory (`None` serves nothing at `/`).
    pub fn static_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.server.static_dir = dir;
        self
    }

    /// Registers an in-process handler for functions whose
    /// `BuildProperties.Binary` is `binary`.
    pub fn handler(mut self, binary: impl Into<String>, handler: Handler) -> Self {
        self.lambda.handlers.0.insert(binary.into(), handler);
        self
    }

    /// Hands in a plug-in whose functions run in the emulator's process
    /// (`roomcast_emulator::plugins::roomcast::functions()` for Roomcast's).
    pub fn plugin(mut self, plugin: std::sync::Arc<dyn FunctionPlugin>) -> Self {
        self.lambda.plugins.push(plugin);
        self
    }

    /// Sets the per-function concurrency limit.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.lambda.max_concurrency = n.max(1);
        self
    }

    /// Chooses how functions with in-process handlers run.
    pub fn functions(mut self, mode: FunctionsMode) -> Self {
        self.lambda.functions = mode;
        self
    }

    /// Builds process functions' cargo binaries at start-up even when they exist.
    pub fn build(mut self, on: bool) -> Self {
        self.lambda.build = on;
        self
    }

    /// Sets the cargo profile of process functions' binaries.
    pub fn cargo_profile(mut self, profile: impl Into<String>) -> Self {
        self.lambda.cargo_profile = profile.into();
        self
    }

    /// Turns hot reload of process functions on or off.
    pub fn watch(mut self, on: bool) -> Self {
        self.lambda.watch = on;
        self
    }

    /// Sets how many entries the inspector's timeline keeps.
    pub fn timeline_size(mut self, entries: usize) -> Self {
        self.dev.timeline_size = entries;
        self
    }

    /// Sets the wait before retrying a failed `Event` invocation.
    pub fn async_retry_base(mut self, d: Duration) -> Self {
        self.lambda.async_retry_base = d;
        self
    }

    /// Sets a template parameter, as SAM's `--parameter-overrides`.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.template
            .parameter_overrides
            .push((name.into(), value.into()));
        self
    }

    /// Verifies SigV4 on the AWS APIs against `verifier` (`None`:
    /// unchecked, the default).
    pub fn verify_sigv4(mut self, verifier: Option<crate::sigv4::Verifier>) -> Self {
        self.server.verify_sigv4 = verifier.is_some();
        self.server.sigv4_keys = verifier;
        self
    }

    /// Signs dev tokens with `secret` instead of the installation's own.
    pub fn dev_secret(mut self, secret: impl Into<String>) -> Self {
        self.dev.dev_secret = Some(secret.into());
        self
    }

    /// Serves requests naming `host` too (`--allowed-host`).
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.server.allowed_hosts.push(host.into());
        self
    }

    /// Serves the developer APIs to other machines too (`--expose-dev-apis`).
    pub fn expose_dev_apis(mut self, on: bool) -> Self {
        self.server.expose_dev_apis = on;
        self
    }

    /// Checks process functions' calls against their roles (true, the
    /// default) or not.
    pub fn iam(mut self, on: bool) -> Self {
        self.lambda.iam = on;
        self
    }

    /// Serves TLS on the same port (true, the default) or plain HTTP only.
    pub fn tls(mut self, on: bool) -> Self {
        self.server.tls = on;
        self
    }

    /// Sets where runtime SDKs, the local CA and the dev secret are kept.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.server.cache_dir = dir.into();
        self
    }

    /// Sets the Python interpreter for `python3.x` functions.
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.lambda.python = python.into();
        self
    }

    /// Chooses the in-process gateway (true) or the SDK path (false).
    pub fn in_process_gateway(mut self, on: bool) -> Self {
        self.gateway.gateway = if on {
            GatewayMode::InProcess
        } else {
            GatewayMode::Sdk
        };
        self
    }

    /// Uses DynamoDB at `endpoint` with `table`.
    pub fn dynamodb(
        mut self,
        endpoint: impl Into<String>,
        table: impl Into<String>,
        create: bool,
    ) -> Self {
        self.dynamodb.endpoint = Some(endpoint.into());
        self.dynamodb.table = table.into();
        self.dynamodb.create_table = create;
        self
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: EmulatorConfig,
    }

    /// The defaults the flags document are the defaults code gets.
    #[test]
    fn the_flags_defaults_are_the_structs_defaults() {
        let Flags { config: parsed } = Flags::parse_from(["roomcast"]);
        let default = EmulatorConfig::default();
        assert_eq!(parsed.template, default.template);
        assert_eq!(parsed.server, default.server);
        assert_eq!(parsed.gateway, default.gateway);
        assert_eq!(parsed.dynamodb, default.dynamodb);
        assert_eq!(parsed.dev, default.dev);
        assert_eq!(
            format!("{:?}", parsed.lambda),
            format!("{:?}", default.lambda)
        );
    }

    #[test]
    fn flags_that_turn_a_default_off_say_no() {
        let Flags { config } = Flags::parse_from([
            "roomcast",
            "--no-tls",
            "--no-iam",
            "--no-dev",
            "--gateway",
            "in-process",
            "--max-duration",
            "5s",
            "--parameter-overrides",
            "A=1",
            "ParameterKey=B,ParameterValue=2",
        ]);
        assert!(!config.server.tls);
        assert!(!config.lambda.iam);
        assert!(!config.dev.dev);
        assert_eq!(config.gateway.gateway, GatewayMode::InProcess);
        assert_eq!(
            config.gateway.max_connection_duration,
            Duration::from_secs(5)
        );
        assert_eq!(
            config.template.parameter_overrides,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
    }
}
