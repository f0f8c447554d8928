//! The `Gateway` port: talking back to WebSocket connections.
//!
//! Adapters: the API Gateway Management API (roomcast-aws, used in Lambda
//! and, by default, by the emulator), the emulator's in-process gateway, and
//! `memory::MemoryGateway` (tests, behind the `test-util` feature).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::config::FanoutConfig;
use crate::pacer::Pacer;

#[cfg(any(test, feature = "test-util"))]
pub mod memory;

/// Why a gateway call failed. Each variant says what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The connection no longer exists (410). Delete it and its memberships.
    #[error("connection is gone")]
    Gone,
    /// The payload is over the 128 KB limit (413). Do not retry.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The client's buffer is full or the account is throttled (429). The
    /// frame was not delivered; the client recovers through resume.
    #[error("throttled")]
    Throttled,
    /// No answer within the per-call timeout. Delivery is unknown.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The function may not manage connections (403): an IAM misconfiguration.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Anything else: network or service failure. Delivery is unknown.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
}

/// What `GET @connections/{id}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// When the connection was made (ms since the epoch).
    pub connected_at_ms: Option<i64>,
    /// The client's IP.
    pub source_ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Last activity (ms since the epoch).
    pub last_active_at_ms: Option<i64>,
}

/// The gateway port.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Sends one frame to a connection.
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), GatewayError>;
    /// Closes a connection.
    async fn delete(&self, connection_id: &str) -> Result<(), GatewayError>;
    /// Describes a connection.
    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, GatewayError>;
}

/// The outcome of one fan-out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutReport {
    /// Frames accepted by the gateway.
    pub delivered: usize,
    /// Connections that turned out to be gone: clean them up.
    pub gone: Vec<String>,
    /// Calls that failed otherwise (timeouts, throttling, outages).
    pub failed: usize,
}

/// Posts `payload` to every target with bounded concurrency and a deadline
/// per call, so that one hung call cannot stall the rest.
pub async fn fan_out(
    gateway: &dyn Gateway,
    targets: impl IntoIterator<Item = String>,
    payload: &[u8],
    config: &FanoutConfig,
) -> FanoutReport {
    let posted = post_until(gateway, targets, payload, config, None, None).await;
    FanoutReport {
        delivered: posted.delivered,
        gone: posted.gone,
        failed: posted.retry.len() + posted.refused,
    }
}

/// The outcome of posting until a stop time, per connection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Frames accepted by the gateway.
    pub delivered: usize,
    /// Connections that turned out to be gone: clean them up.
    pub gone: Vec<String>,
    /// Connections whose post failed for a reason that may pass (throttled,
    /// timed out, unavailable): worth another attempt.
    pub retry: Vec<String>,
    /// Posts refused for good (payload too large, forbidden).
    pub refused: usize,
    /// Connections not posted to because the stop time came first.
    pub not_started: Vec<String>,
}

/// Like [`fan_out`], but starts no post after `stop_at`, and waits for a
/// slot from `pacer` before each: the sharded fan-out's delivery loop.
pub async fn post_until(
    gateway: &dyn Gateway,
    targets: impl IntoIterator<Item = String>,
    payload: &[u8],
    config: &FanoutConfig,
    stop_at: Option<tokio::time::Instant>,
    pacer: Option<&Pacer>,
) -> Posted {
    enum Outcome {
        Done(Result<(), GatewayError>),
        NotStarted,
    }
    let results = futures::stream::iter(targets)
        .map(|id| async move {
            let late = stop_at.is_some_and(|s| tokio::time::Instant::now() >= s);
            let paced = match (pacer, stop_at) {
                (Some(p), Some(s)) => p.wait(s).await,
                (Some(p), None) => p.wait(tokio::time::Instant::now() + FOREVER).await,
                _ => true,
            };
            if late || !paced {
                return (id, Outcome::NotStarted);
            }
            let outcome =
                match tokio::time::timeout(config.call_timeout, gateway.post(&id, payload)).await {
                    Ok(result) => result,
                    Err(_) => Err(GatewayError::Timeout(config.call_timeout)),
                };
            (id, Outcome::Done(outcome))
        })
        .buffer_unordered(config.concurrency.max(1));
    futures::pin_mut!(results);
    let mut posted = Posted::default();
    while let Some((id, outcome)) = results.next().await {
        match outcome {
            Outcome::NotStarted => posted.not_started.push(id),
            Outcome::Done(Ok(())) => posted.delivered += 1,
            Outcome::Done(Err(GatewayError::Gone)) => posted.gone.push(id),
            Outcome::Done(Err(e)) => {
                tracing::warn!(connection_id = %id, error = %e, "post failed");
                match e {
                    GatewayError::PayloadTooLarge | GatewayError::Forbidden(_) => {
                        posted.refused += 1;
                    }
                    _ => posted.retry.push(id),
                }
            }
        }
    }
    posted
}

/// A stop time that never comes, for pacing without a deadline.
const FOREVER: Duration = Duration::from_secs(86_400 * 365);

#[cfg(test)]
mod tests {
    use super::*;
    use memory::MemoryGateway;

    #[tokio::test]
    async fn fan_out_reports_delivered_gone_and_failed() {
        let gw = MemoryGateway::new();
        gw.mark_gone("b");
        gw.fail_with("c", GatewayError::Throttled);
        let targets = ["a", "b", "c", "d"].map(String::from);
        let report = fan_out(&gw, targets, b"hi", &FanoutConfig::default()).await;
        assert_eq!(report.delivered, 2);
        assert_eq!(report.gone, vec!["b".to_owned()]);
        assert_eq!(report.failed, 1);
        assert_eq!(gw.texts("a"), vec!["hi".to_owned()]);
        assert!(gw.texts("b").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_times_out_without_stalling_the_rest() {
        let gw = MemoryGateway::new();
        gw.hang("slow");
        let config = FanoutConfig {
            concurrency: 2,
            call_timeout: Duration::from_millis(50),
            ..FanoutConfig::default()
        };
        let targets = ["slow", "x", "y", "z"].map(String::from);
        let report = fan_out(&gw, targets, b"m", &config).await;
        assert_eq!(report.delivered, 3);
        assert_eq!(report.failed, 1);
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let gw = MemoryGateway::new();
        let config = FanoutConfig {
            concurrency: 3,
            call_timeout: Duration::from_secs(1),
            ..FanoutConfig::default()
        };
        let targets: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
        let report = fan_out(&gw, targets, b"m", &config).await;
        assert_eq!(report.delivered, 50);
        assert!(gw.max_in_flight() <= 3, "in flight {}", gw.max_in_flight());
    }
}
