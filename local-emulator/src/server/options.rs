//! The emulator's front: where it listens, who it answers, TLS, the demo's
//! files, and the AWS APIs' signatures.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

use crate::cli_values::duration;
use crate::sigv4::Verifier;

/// How the emulator's port behaves. Every field is a `roomcast dev` flag,
/// or (`skip`) a setting only code changes.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Address to listen on. Beyond loopback, other machines reach the
    /// WebSocket API and `@connections`; the developer APIs answer this
    /// machine only unless --expose-dev-apis.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    /// Longest a client may take to send a request's headers, the upgrade
    /// included; then the TCP connection is closed. Also ends idle HTTP
    /// keep-alive connections. Emulator choice: 10s.
    #[arg(long = "header-timeout", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// Connections still sending their first request's headers, at most.
    /// At the cap no more are accepted until one finishes or times out, so
    /// half-sent requests cannot use up file descriptors. Default 512.
    #[arg(long, default_value_t = 512)]
    pub max_pending_handshakes: usize,
    /// Directory served at / (the demo).
    #[arg(long, default_value = "web")]
    pub static_dir: Option<PathBuf>,
    /// Serve TLS on the same port as plain HTTP (told apart by the first
    /// byte), with a certificate from a local CA kept in the cache
    /// directory, so that `https://{domainName}/{stage}` callbacks work as
    /// written. `--no-tls` serves plain HTTP only.
    #[arg(
        long = "no-tls",
        action = ArgAction::SetFalse,
        help = "Serve plain HTTP only. By default the port also serves TLS (https://, wss://) with a certificate from a local CA kept in the cache directory, so that `https://{domainName}/{stage}` callbacks work as written"
    )]
    pub tls: bool,
    /// Serve requests that name this host too (repeatable). By default the
    /// emulator answers localhost, *.localhost, IP addresses and the API's
    /// execute-api host only, so that a web page cannot reach it through a
    /// name it re-resolves to this machine (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// With a --host beyond loopback, serve the inspector, replay, faults,
    /// /dev/token and the Invoke API to other machines too (by default they
    /// answer this machine only).
    #[arg(long)]
    pub expose_dev_apis: bool,
    /// Verify SigV4 signatures on `@connections`, the Invoke API and
    /// EventBridge against the credentials the emulator gives its
    /// functions (the environment's AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY, else `local`/`local`); a bad signature gets
    /// AWS's 403 InvalidSignatureException. Off by default: signatures are
    /// accepted unchecked.
    #[arg(long)]
    pub verify_sigv4: bool,
    /// The key pair `verify_sigv4` checks against, when not the
    /// environment's.
    #[arg(skip)]
    pub sigv4_keys: Option<Verifier>,
    /// Where the AWS SDK that Lambda's Node.js and Python runtimes include
    /// is installed for functions that import it, the local CA and the dev
    /// secret are kept. Default `ROOMCAST_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/roomcast`, else `~/.cache/roomcast`.
    #[arg(long, env = "ROOMCAST_CACHE_DIR", default_value_os_t = crate::lambda::runtime_sdk::default_cache_dir())]
    pub cache_dir: PathBuf,
    /// How long shutdown waits for `$disconnect` handlers: 5s.
    #[arg(skip = Duration::from_secs(5))]
    pub shutdown_grace: Duration,
}

impl ServerOptions {
    /// Where to listen.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The key pair signatures are checked against, when they are.
    pub(crate) fn verifier(&self) -> Option<Verifier> {
        self.verify_sigv4.then(|| {
            self.sigv4_keys
                .clone()
                .unwrap_or_else(Verifier::from_environment)
        })
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 3001,
            header_read_timeout: Duration::from_secs(10),
            max_pending_handshakes: 512,
            static_dir: Some(PathBuf::from("web")),
            tls: true,
            allowed_hosts: Vec::new(),
            expose_dev_apis: false,
            verify_sigv4: false,
            sigv4_keys: None,
            cache_dir: crate::lambda::runtime_sdk::default_cache_dir(),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
