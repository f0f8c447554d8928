//! The metrics port: what the domain counts, without knowing where the
//! numbers go (CloudWatch EMF in Lambda, nowhere in the emulator).

#[cfg(any(test, feature = "test-util"))]
use std::collections::BTreeMap;
#[cfg(any(test, feature = "test-util"))]
use std::sync::Mutex;

/// What Roomcast measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Client frames handled.
    Messages,
    /// Recipients targeted by fan-outs.
    FanoutSize,
    /// Frames the gateway accepted.
    Delivered,
    /// Connections found gone during fan-out.
    GoneConnections,
    /// Frames answered with an error (bad input, rights, rate limit).
    Rejects,
    /// Handler latency, milliseconds.
    Latency,
    /// Shards handed to the `fanout` function.
    ShardsDispatched,
    /// Connections a shard re-queued: its remainder when time ran out, or
    /// posts that failed and are tried again.
    Requeued,
    /// Frames that will never be delivered: posts that kept failing after
    /// every attempt, or refused for good. Alarm on it.
    Undelivered,
    /// Frames delivered again because a failed shard is retried whole; the
    /// clients drop them by (room, seq).
    Redelivered,
    /// Events the team's backend will never get: EventBridge kept refusing
    /// them until the invocation's deadline, or they were too large even
    /// without data. Alarm on it.
    EventsFailed,
    /// Events sent without their `data` because they were over 256 KB.
    EventsTrimmed,
}

impl Metric {
    /// The metric's published name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Messages => "Messages",
            Self::FanoutSize => "FanoutSize",
            Self::Delivered => "Delivered",
            Self::GoneConnections => "GoneConnections",
            Self::Rejects => "Rejects",
            Self::Latency => "Latency",
            Self::ShardsDispatched => "ShardsDispatched",
            Self::Requeued => "Requeued",
            Self::Undelivered => "Undelivered",
            Self::Redelivered => "Redelivered",
            Self::EventsFailed => "EventsFailed",
            Self::EventsTrimmed => "EventsTrimmed",
        }
    }

    /// The metric's unit, as CloudWatch names it.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Latency => "Milliseconds",
            _ => "Count",
        }
    }
}

/// Somewhere to count. Recording must be cheap and must never fail the
/// request: an adapter that cannot record drops the number.
pub trait Metrics: Send + Sync {
    /// Adds `value` to `metric` for the current invocation.
    fn add(&self, metric: Metric, value: f64);
}

/// Records nothing (the emulator, and wherever nobody reads metrics).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn add(&self, _metric: Metric, _value: f64) {}
}

/// Keeps every number in memory, for tests to read back.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct RecordedMetrics(Mutex<BTreeMap<Metric, f64>>);

#[cfg(any(test, feature = "test-util"))]
impl RecordedMetrics {
    /// What was recorded since the last call, leaving nothing behind.
    pub fn take(&self) -> BTreeMap<Metric, f64> {
        self.0
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Metrics for RecordedMetrics {
    fn add(&self, metric: Metric, value: f64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(metric).or_insert(0.0) += value;
        }
    }
}
