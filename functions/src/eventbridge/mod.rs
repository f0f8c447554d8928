//! The [`Events`] adapter: EventBridge `PutEvents`, batched.
//!
//! One invocation's events go out together: packed into as few calls as
//! EventBridge's limits allow (10 entries, 256 KB; usually one call), the
//! calls made concurrently. Entries that fail (a throttled call, a call
//! that errs or times out, entries reported in `FailedEntryCount` with a
//! retryable code) are sent again with backoff until the deadline; what
//! still fails is counted (`EventsFailed`, alarmed in the template) and
//! logged entry by entry. Nothing here ever fails the caller: a client's
//! frame never waits on, or fails for, EventBridge.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use roomcast_core::events::{Event, Events};
use roomcast_core::metrics::{Metric, Metrics};
use tokio::time::Instant;

pub mod batch;

use batch::Entry;

/// Settings for [`EventBridgeEvents`], with documented defaults.
#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// The bus (name or ARN). `ROOMCAST_EVENT_BUS`; empty: events off.
    pub bus: String,
    /// The events' `source`. `ROOMCAST_EVENT_SOURCE`, default `roomcast`.
    pub source: String,
    /// How long to keep retrying when the invocation's deadline is not
    /// known or is later. Default 2 s: well inside every function's
    /// timeout, and long enough for three or four backoffs.
    pub retry_window: Duration,
    /// Per-call timeout. Default 1 s (PutEvents answers in tens of ms).
    pub call_timeout: Duration,
}

impl EventsConfig {
    /// Events to `bus` with the defaults.
    pub fn new(bus: impl Into<String>) -> Self {
        Self {
            bus: bus.into(),
            source: "roomcast".into(),
            retry_window: Duration::from_secs(2),
            call_timeout: Duration::from_secs(1),
        }
    }
}

/// Sends events to one EventBridge bus. Build once at init.
pub struct EventBridgeEvents {
    client: Client,
    config: EventsConfig,
    metrics: &'static dyn Metrics,
}

/// What one call left to do.
enum Outcome {
    /// Every entry was accepted (or given up on for good).
    Done,
    /// These entries may succeed if sent again.
    Retry(Vec<Entry>, String),
}

impl EventBridgeEvents {
    /// An adapter for `config.bus`; `endpoint` overrides EventBridge's
    /// endpoint (the emulator). The SDK's own retries are off: this adapter
    /// retries within the invocation's deadline instead.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        config: EventsConfig,
        endpoint: Option<&str>,
        metrics: &'static dyn Metrics,
    ) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(config.call_timeout)
            .operation_attempt_timeout(config.call_timeout)
            .build();
        let mut builder = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            config,
            metrics,
        }
    }

    /// Sends one call's entries, retrying what may succeed until `deadline`.
    async fn send(&self, mut entries: Vec<Entry>, deadline: Instant) {
        let mut attempt: u32 = 0;
        loop {
            let (rest, why) = match self.call(entries, deadline).await {
                Outcome::Done => return,
                Outcome::Retry(rest, why) => (rest, why),
            };
            attempt += 1;
            let wait = backoff(attempt);
            if Instant::now() + wait >= deadline {
                self.give_up(
                    &rest,
                    &format!("out of time after {attempt} attempts: {why}"),
                );
                return;
            }
            tracing::info!(entries = rest.len(), attempt, error = %why, "retrying events");
            tokio::time::sleep(wait).await;
            entries = rest;
        }
    }

    /// One `PutEvents` call.
    async fn call(&self, entries: Vec<Entry>, deadline: Instant) -> Outcome {
        let request = entries.iter().map(|e| self.request_entry(e)).collect();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = self.client.put_events().set_entries(Some(request)).send();
        let out = match tokio::time::timeout(remaining, sent).await {
            Err(_) => return Outcome::Retry(entries, "timed out".into()),
            Ok(Err(e)) => {
                let why = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                if call_retryable(e.code(), e.raw_response().map(|r| r.status().as_u16())) {
                    return Outcome::Retry(entries, why);
                }
                self.give_up(&entries, &why);
                return Outcome::Done;
            }
            Ok(Ok(out)) => out,
        };
        if out.failed_entry_count() == 0 {
            return Outcome::Done;
        }
        self.sort_failures(entries, out.entries())
    }

    /// Splits a partly failed call: retryable entries back, others given up.
    fn sort_failures(&self, entries: Vec<Entry>, results: &[PutEventsResultEntry]) -> Outcome {
        let mut again = Vec::new();
        let mut last = String::new();
        for (entry, result) in entries.into_iter().zip(results) {
            let Some(code) = result.error_code() else {
                continue;
            };
            let why = format!("{code}: {}", result.error_message().unwrap_or_default());
            if retryable(code) {
                last = why;
                again.push(entry);
            } else {
                self.give_up(std::slice::from_ref(&entry), &why);
            }
        }
        if again.is_empty() {
            Outcome::Done
        } else {
            Outcome::Retry(again, last)
        }
    }

    fn request_entry(&self, e: &Entry) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.config.bus)
            .source(&self.config.source)
            .detail_type(e.detail_type)
            .detail(&e.detail)
            .build()
    }

    /// Counts and logs entries that will not be delivered.
    fn give_up(&self, entries: &[Entry], why: &str) {
        self.metrics.add(Metric::EventsFailed, entries.len() as f64);
        for e in entries {
            tracing::error!(
                detail_type = e.detail_type,
                event = %e.key,
                size = e.size,
                bus = %self.config.bus,
                error = why,
                "event not delivered"
            );
        }
    }
}

/// Whether a failed call may pass if made again: throttling and service
/// faults (awsJson services answer throttling with 400 and the code in
/// `__type`, so the code decides first), 429 and 5xx, and no answer at
/// all. Access and validation errors will not pass.
fn call_retryable(code: Option<&str>, status: Option<u16>) -> bool {
    if code.is_some_and(retryable) {
        return true;
    }
    match status {
        None => true,
        Some(s) => s == 429 || s >= 500,
    }
}

/// Entry error codes worth another attempt (the others, such as
/// `MalformedDetail` or `NotAuthorizedForSourceException`, never pass).
fn retryable(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException"
    )
}

/// 25 ms, doubling, at most 800 ms, with up to a quarter of jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 25u64.saturating_mul(1 << attempt.min(5)).min(800);
    let jitter = u64::from(uuid::Uuid::new_v4().as_u128() as u16) % (base / 4 + 1);
    Duration::from_millis(base - jitter)
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn put(&self, events: Vec<Event>, deadline: Option<Instant>) {
        let own = Instant::now() + self.config.retry_window;
        let deadline = deadline.map_or(own, |d| d.min(own));
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            match batch::entry(&self.config.source, event) {
                Ok(e) => {
                    if e.trimmed {
                        self.metrics.add(Metric::EventsTrimmed, 1.0);
                        tracing::warn!(
                            detail_type = e.detail_type,
                            event = %e.key,
                            "event over 256 KB sent without its data"
                        );
                    }
                    entries.push(e);
                }
                Err(u) => {
                    self.metrics.add(Metric::EventsFailed, 1.0);
                    tracing::error!(
                        detail_type = u.detail_type,
                        event = %u.key,
                        size = u.size,
                        "event over 256 KB even without data; not sent"
                    );
                }
            }
        }
        let calls = batch::pack(entries);
        futures::future::join_all(calls.into_iter().map(|c| self.send(c, deadline))).await;
    }
}

impl std::fmt::Debug for EventBridgeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBridgeEvents")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
