//! The emulator's settings. Defaults are API Gateway's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::lambda::registry::Handler;

/// How the emulator behaves. Build with [`EmulatorConfig::default`] and the
/// setters; every default below is API Gateway's own, unless noted.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen. Default `127.0.0.1:3001`; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The SAM template. Default `./template.yaml`.
    pub template: PathBuf,
    /// Largest WebSocket frame. Default 32 KiB.
    pub max_frame_bytes: usize,
    /// Largest message (frames joined). Default 128 KiB.
    pub max_message_bytes: usize,
    /// Idle timeout: no data frame either way for this long closes with
    /// 1001. Default 10 min.
    pub idle_timeout: Duration,
    /// Longest a connection may live; then it closes with 1001. Default 2 h.
    pub max_connection_duration: Duration,
    /// Longest a handler invocation may run. Default 29 s (API Gateway's
    /// integration timeout); the function's own `Timeout` applies if shorter.
    pub integration_timeout: Duration,
    /// Frames queued for one connection before `@connections` POSTs answer
    /// 429 (the client is not reading). Default 256 (emulator choice).
    pub outbound_queue: usize,
    /// Longest one frame may wait to be written to a client's socket. A
    /// client that takes nothing for this long is a slow consumer: its
    /// connection is cut (TCP closed, `$disconnect` with 1006), so it holds
    /// no memory or task beyond this bound. Default 10 s (emulator choice).
    pub write_timeout: Duration,
    /// How long a server-initiated close (DELETE `@connections`, timeouts,
    /// limits, shutdown) waits for queued frames, the close frame and the
    /// client's reply before the TCP connection is dropped. Default 2 s.
    pub close_timeout: Duration,
    /// Longest a client may take to send a request's headers, the upgrade
    /// included; then the TCP connection is closed. Also ends idle HTTP
    /// keep-alive connections. Default 10 s (emulator choice).
    pub header_read_timeout: Duration,
    /// Connections still sending their first request's headers, at most. At
    /// the cap no more are accepted until one finishes or times out, so
    /// half-sent requests cannot use up file descriptors. Default 512.
    pub max_pending_handshakes: usize,
    /// Serve `GET /dev/token` with tokens signed by `dev_secret`, and use
    /// that secret for the authorizer unless the environment sets another.
    /// Default true for `roomcast dev`.
    pub dev: bool,
    /// The HS256 secret for dev tokens. Default `None`: the installation's
    /// own, random, kept in `cache_dir/dev-secret` (mode 0600,
    /// `crate::dev_secret`). Never use a development secret in production.
    pub dev_secret: Option<String>,
    /// Static files served at `/` (the demo). Default `./web`.
    pub static_dir: Option<PathBuf>,
    /// What `!Ref` of the table resource means and which table DynamoDB
    /// mode uses. Default `roomcast`.
    pub table: String,
    /// Use DynamoDB at this endpoint instead of the embedded memory store.
    pub dynamodb_endpoint: Option<String>,
    /// Create the table if it is missing (DynamoDB mode).
    pub create_table: bool,
    /// How long shutdown waits for `$disconnect` handlers. Default 5 s.
    pub shutdown_grace: Duration,
    /// Concurrent invocations per function, like Lambda's concurrency
    /// limit; more wait their turn. Default 16 (emulator choice, sized for a
    /// laptop: AWS's account default is 1,000).
    pub max_concurrency: usize,
    /// Deliver handler posts in-process instead of through the AWS SDK and
    /// the `@connections` HTTP API. Default false: the SDK path is what
    /// production runs; this is a fast path for load tests.
    pub in_process_gateway: bool,
    /// Extra in-process handlers by binary name, consulted before
    /// Roomcast's own: run your own Rust handlers from your template.
    pub handlers: BTreeMap<String, Handler>,
    /// How Roomcast's own functions run. Functions the emulator has no
    /// in-process handler for always run as processes.
    pub functions: FunctionsMode,
    /// Run `cargo build` for process functions at start-up even when their
    /// binary exists (`--build`). Default false: built only when missing.
    pub build: bool,
    /// The Python interpreter for `python3.x` functions; it needs PyPI's
    /// `awslambdaric`. Default `python3`.
    pub python: PathBuf,
    /// Verify SigV4 signatures on `@connections` and the Invoke API
    /// against these credentials (`--verify-sigv4`). Default `None`:
    /// signatures are accepted unchecked.
    pub verify_sigv4: Option<crate::sigv4::Verifier>,
    /// Host names served besides localhost, `*.localhost`, IP addresses and
    /// the API's execute-api host (`--allowed-host`, repeatable). Any
    /// other `Host` is refused (DNS rebinding protection, `crate::guard`).
    /// Default none.
    pub allowed_hosts: Vec<String>,
    /// Serve the developer APIs (inspector, replay, faults, `/dev/token`,
    /// the Invoke API) to other machines when listening beyond loopback
    /// (`--expose-dev-apis`). Default false: loopback peers only.
    pub expose_dev_apis: bool,
    /// Check every AWS call a process function makes through the emulator
    /// against its execution role from the template, as IAM would
    /// (`crate::iam`), and give each function its own credentials.
    /// Default true; `--no-iam` turns it off (functions then get the
    /// emulator's own credentials).
    pub iam: bool,
    /// Serve TLS on the same port as plain HTTP (told apart by the first
    /// byte), with a certificate from a local CA kept in `cache_dir/tls`,
    /// so that `https://{domainName}/{stage}` callbacks work as written.
    /// Default true.
    pub tls: bool,
    /// Where the AWS SDK that Lambda's Node.js and Python runtimes ship is
    /// installed for functions that import it (`lambda::runtime_sdk`).
    /// Default `ROOMCAST_CACHE_DIR`, else `$XDG_CACHE_HOME/roomcast`, else
    /// `~/.cache/roomcast`.
    pub cache_dir: PathBuf,
    /// The cargo profile whose binaries process functions run: `debug`
    /// (default), `release` or a custom one (`target/<profile>/`).
    pub cargo_profile: String,
    /// Hot reload (`--watch`): rebuild and restart process functions whose
    /// code changes; connections stay open. Default false.
    pub watch: bool,
    /// After a failed `Event` invocation, Lambda retries after about one
    /// minute, then two. Default 60 s (the second retry waits twice this).
    pub async_retry_base: Duration,
    /// Entries the inspector's timeline keeps (a ring: memory stays flat).
    /// Default 2000.
    pub timeline_size: usize,
    /// Template parameter values in place of their defaults, as SAM's
    /// `--parameter-overrides`. Default none.
    pub parameter_overrides: BTreeMap<String, String>,
}

/// How the functions Roomcast has in-process handlers for are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FunctionsMode {
    /// In the emulator's process: no build, the memory store works.
    #[default]
    InProcess,
    /// Every function as its real binary behind the Runtime API; they share
    /// state through DynamoDB only, so a DynamoDB endpoint is required.
    Process,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("addr", &self.addr)
            .field("template", &self.template)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connection_duration", &self.max_connection_duration)
            .field("integration_timeout", &self.integration_timeout)
            .field("dev", &self.dev)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .field("in_process_gateway", &self.in_process_gateway)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("functions", &self.functions)
            .finish_non_exhaustive()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3001)),
            template: PathBuf::from("template.yaml"),
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(600),
            max_connection_duration: Duration::from_secs(2 * 3600),
            integration_timeout: Duration::from_secs(29),
            outbound_queue: 256,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(10),
            max_pending_handshakes: 512,
            dev: true,
            dev_secret: None,
            static_dir: Some(PathBuf::from("web")),
            table: "roomcast".into(),
            dynamodb_endpoint: None,
            create_table: false,
            shutdown_grace: Duration::from_secs(5),
            handlers: BTreeMap::new(),
            in_process_gateway: false,
            max_concurrency: 16,
            functions: FunctionsMode::InProcess,
            build: false,
            python: PathBuf::from("python3"),
            cache_dir: crate::lambda::runtime_sdk::default_cache_dir(),
            tls: true,
            iam: true,
            allowed_hosts: Vec::new(),
            expose_dev_apis: false,
            verify_sigv4: None,
            async_retry_base: Duration::from_secs(60),
            timeline_size: crate::timeline::DEFAULT_TIMELINE,
            watch: false,
            cargo_profile: "debug".into(),
            parameter_overrides: BTreeMap::new(),
        }
    }
}

impl EmulatorConfig {
    /// Sets the listen address.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets the template path.
    pub fn template(mut self, path: impl Into<PathBuf>) -> Self {
        self.template = path.into();
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets the maximum connection duration.
    pub fn max_connection_duration(mut self, d: Duration) -> Self {
        self.max_connection_duration = d;
        self
    }

    /// Sets the integration timeout.
    pub fn integration_timeout(mut self, d: Duration) -> Self {
        self.integration_timeout = d;
        self
    }

    /// Sets the frame and message limits.
    pub fn size_limits(mut self, frame: usize, message: usize) -> Self {
        self.max_frame_bytes = frame;
        self.max_message_bytes = message;
        self
    }

    /// Sets the per-connection outbound queue bound.
    pub fn outbound_queue(mut self, frames: usize) -> Self {
        self.outbound_queue = frames.max(1);
        self
    }

    /// Sets the slow-consumer bound and the closing handshake's deadline.
    pub fn write_limits(mut self, write_timeout: Duration, close_timeout: Duration) -> Self {
        self.write_timeout = write_timeout;
        self.close_timeout = close_timeout;
        self
    }

    /// Sets the header-read timeout and the cap on pending handshakes.
    pub fn handshake_limits(mut self, header_read_timeout: Duration, max_pending: usize) -> Self {
        self.header_read_timeout = header_read_timeout;
        self.max_pending_handshakes = max_pending.max(1);
        self
    }

    /// Enables or disables dev mode.
    pub fn dev(mut self, dev: bool) -> Self {
        self.dev = dev;
        self
    }

    /// Sets the static directory (`None` serves nothing at `/`).
    pub fn static_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.static_dir = dir;
        self
    }

    /// Registers an in-process handler for functions whose
    /// `BuildProperties.Binary` is `binary`.
    pub fn handler(mut self, binary: impl Into<String>, handler: Handler) -> Self {
        self.handlers.insert(binary.into(), handler);
        self
    }

    /// Sets the per-function concurrency limit.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Chooses how Roomcast's own functions run.
    pub fn functions(mut self, mode: FunctionsMode) -> Self {
        self.functions = mode;
        self
    }

    /// Builds process functions' cargo binaries at start-up even when they exist.
    pub fn build(mut self, on: bool) -> Self {
        self.build = on;
        self
    }

    /// Sets the cargo profile of process functions' binaries.
    pub fn cargo_profile(mut self, profile: impl Into<String>) -> Self {
        self.cargo_profile = profile.into();
        self
    }

    /// Turns hot reload of process functions on or off.
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }

    /// Sets how many entries the inspector's timeline keeps.
    pub fn timeline_size(mut self, entries: usize) -> Self {
        self.timeline_size = entries;
        self
    }

    /// Sets the wait before retrying a failed `Event` invocation.
    pub fn async_retry_base(mut self, d: Duration) -> Self {
        self.async_retry_base = d;
        self
    }

    /// Sets a template parameter, as SAM's `--parameter-overrides`.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameter_overrides.insert(name.into(), value.into());
        self
    }

    /// Verifies SigV4 on `@connections` and the Invoke API against
    /// `verifier` (`None`: unchecked, the default).
    pub fn verify_sigv4(mut self, verifier: Option<crate::sigv4::Verifier>) -> Self {
        self.verify_sigv4 = verifier;
        self
    }

    /// Signs dev tokens with `secret` instead of the installation's own.
    pub fn dev_secret(mut self, secret: impl Into<String>) -> Self {
        self.dev_secret = Some(secret.into());
        self
    }

    /// Serves requests naming `host` too (`--allowed-host`).
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Serves the developer APIs to other machines too (`--expose-dev-apis`).
    pub fn expose_dev_apis(mut self, on: bool) -> Self {
        self.expose_dev_apis = on;
        self
    }

    /// Checks process functions' calls against their roles (true, the
    /// default) or not.
    pub fn iam(mut self, on: bool) -> Self {
        self.iam = on;
        self
    }

    /// Serves TLS on the same port (true, the default) or plain HTTP only.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Sets where runtime SDKs and the local CA are kept.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// Sets the Python interpreter for `python3.x` functions.
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Chooses the in-process gateway (true) or the SDK path (false).
    pub fn in_process_gateway(mut self, on: bool) -> Self {
        self.in_process_gateway = on;
        self
    }

    /// Uses DynamoDB at `endpoint` with `table`.
    pub fn dynamodb(
        mut self,
        endpoint: impl Into<String>,
        table: impl Into<String>,
        create: bool,
    ) -> Self {
        self.dynamodb_endpoint = Some(endpoint.into());
        self.table = table.into();
        self.create_table = create;
        self
    }
}
