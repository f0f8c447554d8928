//! API Gateway's settings: its limits and timeouts (defaults are API
//! Gateway's own, unless noted), and how handlers reach `@connections`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli_values::duration;

/// How API Gateway behaves. Every field is a `roomcast dev` flag, or
/// (`skip`) a setting only code changes.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct GatewayOptions {
    /// Idle timeout: no data frame either way for this long closes with
    /// 1001 (API Gateway: 10m), e.g. 2s, 500ms, 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Longest a connection may live; then it closes with 1001 (API
    /// Gateway: 2h).
    #[arg(long = "max-duration", default_value = "2h", value_name = "DURATION", value_parser = duration)]
    pub max_connection_duration: Duration,
    /// Longest a handler invocation may run (API Gateway's integration
    /// timeout: 29s); a function's own `Timeout` applies if shorter.
    #[arg(long, default_value = "29s", value_name = "DURATION", value_parser = duration)]
    pub integration_timeout: Duration,
    /// Frames queued per connection before `@connections` POSTs get 429
    /// (the client is not reading). Emulator choice: 256.
    #[arg(long, default_value_t = 256)]
    pub outbound_queue: usize,
    /// A client that takes no frame for this long is cut (slow consumer:
    /// TCP closed, `$disconnect` with 1006), so it holds no memory or task
    /// beyond this bound. Emulator choice: 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = duration)]
    pub write_timeout: Duration,
    /// How long a server-initiated close (DELETE `@connections`, timeouts,
    /// limits, shutdown) waits for queued frames, the close frame and the
    /// client's reply before the TCP connection is dropped. Default 2s.
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = duration)]
    pub close_timeout: Duration,
    /// Largest WebSocket frame: 32 KiB.
    #[arg(skip = 32 * 1024_usize)]
    pub max_frame_bytes: usize,
    /// Largest message (frames joined): 128 KiB.
    #[arg(skip = 128 * 1024_usize)]
    pub max_message_bytes: usize,
    /// How handlers reach clients: `sdk` (aws-sdk-apigatewaymanagement
    /// against the `@connections` API, as in production) or `in-process`
    /// (straight into the connection registry: a fast path for load
    /// tests). Both go through the same PostToConnection.
    #[arg(long, value_enum, default_value = "sdk")]
    pub gateway: GatewayMode,
}

/// How handlers' posts reach the connection registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GatewayMode {
    /// Through the AWS SDK and the `@connections` HTTP API.
    #[default]
    Sdk,
    /// In the emulator's process, for Roomcast's in-process functions.
    InProcess,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_connection_duration: Duration::from_secs(2 * 3600),
            integration_timeout: Duration::from_secs(29),
            outbound_queue: 256,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            gateway: GatewayMode::Sdk,
        }
    }
}
