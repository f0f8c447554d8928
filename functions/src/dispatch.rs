//! The production `Dispatch`: Lambda's asynchronous Invoke of the `fanout`
//! function (`InvocationType: Event`).
//!
//! Why Lambda async invoke and not SQS with an event source mapping: one
//! hop instead of two (no poller between queue and function), no queue to
//! provision or pay for idle, Lambda's own retries (two, with backoff) and
//! a failure destination for what still fails, and throttled events wait in
//! Lambda's queue for up to six hours, so the `fanout` function's reserved
//! concurrency is a natural brake. SQS would add batching and longer
//! retention, which shards (one per invocation, delivered in seconds) do
//! not need. The same client reaches the emulator's Invoke API through
//! `AWS_ENDPOINT_URL_LAMBDA`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::shard::{Dispatch, DispatchError, EVENT_LIMIT, Shard};

/// Invokes the `fanout` function asynchronously. Build once at init.
pub struct LambdaDispatch {
    client: Client,
    function: String,
}

impl LambdaDispatch {
    /// A dispatcher to `function` (name or ARN). `endpoint` overrides the
    /// Lambda endpoint (the emulator's Invoke API).
    pub fn new(sdk: &aws_config::SdkConfig, function: String, endpoint: Option<&str>) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(10))
            .build();
        let mut builder = aws_sdk_lambda::config::Builder::from(sdk).timeout_config(timeouts);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            function,
        }
    }
}

#[async_trait]
impl Dispatch for LambdaDispatch {
    async fn dispatch(&self, shard: &Shard) -> Result<(), DispatchError> {
        let payload = serde_json::to_vec(shard)
            .map_err(|e| DispatchError::Unavailable(format!("cannot encode the shard: {e}")))?;
        if payload.len() > EVENT_LIMIT {
            return Err(DispatchError::TooLarge {
                size: payload.len(),
                limit: EVENT_LIMIT,
            });
        }
        let size = payload.len();
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match &e {
                SdkError::ServiceError(s)
                    if matches!(s.err(), InvokeError::RequestTooLargeException(_)) =>
                {
                    DispatchError::TooLarge {
                        size,
                        limit: EVENT_LIMIT,
                    }
                }
                _ => DispatchError::Unavailable(DisplayErrorContext(&e).to_string()),
            })
    }
}

impl std::fmt::Debug for LambdaDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaDispatch")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}
