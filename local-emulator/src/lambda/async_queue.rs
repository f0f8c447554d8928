//! Lambda's asynchronous queue: `Event` invocations from the Invoke API
//! and from services that invoke asynchronously (EventBridge rules), with
//! Lambda's retries.

use std::sync::Arc;

use serde_json::Value;

use crate::lambda::invoke::{Function, InvokeFailure};
use crate::lambda::pool::InvokeContext;
use crate::metrics::Metrics;

/// Lambda retries a failed asynchronous invocation twice.
const ASYNC_RETRIES: u32 = 2;

/// The queue: how long it waits before a retry, and what it counts.
#[derive(Clone)]
pub(crate) struct AsyncQueue {
    /// The wait before the first retry of a failed invocation.
    pub(crate) retry_base: std::time::Duration,
    pub(crate) metrics: Arc<Metrics>,
}

impl AsyncQueue {
    /// Queues an `Event` invocation of `function` with `event`.
    pub(crate) fn enqueue(&self, function: Arc<Function>, event: Value, context: InvokeContext) {
        tokio::spawn(run_async(self.clone(), function, event, context));
    }
}

/// An `Event` invocation: retried twice on error, after 1 and 2 minutes
/// as Lambda does (scaled by `async_retry_base`), then logged as dropped.
/// A throttled attempt is no attempt: the event goes back to the queue and
/// is tried again, 1 s after the first throttle and exponentially longer up
/// to 5 minutes, for up to 6 hours (AWS, "How Lambda handles errors and
/// retries with asynchronous invocation"; all scaled alike).
async fn run_async(
    queue: AsyncQueue,
    function: Arc<Function>,
    event: Value,
    context: InvokeContext,
) {
    // Names the queued event across its attempts (each attempt has its own
    // request id, as in Lambda).
    let event_id = uuid::Uuid::new_v4().to_string();
    let base = queue.retry_base;
    let queued = tokio::time::Instant::now();
    let mut throttled_wait = base / 60;
    let mut attempt = 0;
    loop {
        let outcome = function
            .call(
                "invoke-async",
                event.clone(),
                context.clone(),
                &queue.metrics,
            )
            .await;
        let delay = match outcome {
            Ok(_) => return,
            Err(InvokeFailure::Throttled) => {
                if queued.elapsed() >= base * 360 {
                    queue.metrics.error("async_invocation_dropped");
                    tracing::error!(function = %function.name, event_id, "asynchronous event throttled for its whole maximum age; dropped (in AWS: its DLQ or on-failure destination)");
                    return;
                }
                let wait = throttled_wait;
                throttled_wait = (throttled_wait * 2).min(base * 5);
                tracing::info!(function = %function.name, event_id, retry_in_ms = wait.as_millis() as u64, "asynchronous invocation throttled; back to the queue");
                wait
            }
            Err(e) if attempt == ASYNC_RETRIES => {
                queue.metrics.error("async_invocation_dropped");
                tracing::error!(function = %function.name, event_id, error = %e, "asynchronous invocation failed after {ASYNC_RETRIES} retries; dropped (in AWS: its DLQ or on-failure destination)");
                return;
            }
            Err(e) => {
                attempt += 1;
                let delay = base * attempt;
                tracing::warn!(function = %function.name, event_id, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "asynchronous invocation failed; retrying");
                delay
            }
        };
        tokio::time::sleep(delay).await;
    }
}
