//! In-process handlers by binary name: the emulator's fast path for
//! Roomcast's own functions, built from roomcast-aws's handlers.
//!
//! Each entry takes the event as JSON and returns the response as JSON, so
//! serde mismatches surface offline exactly as they would in Lambda.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use roomcast_aws::handlers::{self, AppBuilder, HandlerError, InitError};
use roomcast_aws::shard::Shard;

/// The binaries roomcast-aws builds, i.e. the keys of the registry.
pub const BINARIES: &[&str] = &[
    "authorizer",
    "connect",
    "disconnect",
    "fanout",
    "message",
    "publish",
];

/// A failed invocation, as Lambda would report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {error_message}")]
pub struct InvokeError {
    /// Lambda's `errorType`.
    pub error_type: String,
    /// Lambda's `errorMessage`.
    pub error_message: String,
}

impl InvokeError {
    /// Whether a REQUEST authorizer refused with API Gateway's documented
    /// signal: failing with the error message `Unauthorized`, which API
    /// Gateway answers with 401 instead of 500. This is the wire contract
    /// between any authorizer and API Gateway, not our own error text.
    pub fn is_unauthorized(&self) -> bool {
        self.error_message == "Unauthorized"
    }
}

impl From<HandlerError> for InvokeError {
    fn from(e: HandlerError) -> Self {
        let d: lambda_runtime::Diagnostic = e.into();
        Self {
            error_type: d.error_type,
            error_message: d.error_message,
        }
    }
}

/// The future an invocation returns.
pub type InvokeFuture = Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send>>;

/// One function, ready to invoke with a JSON event.
pub type Handler = Arc<dyn Fn(Value) -> InvokeFuture + Send + Sync>;

fn decode<T: DeserializeOwned>(event: Value) -> Result<T, InvokeError> {
    serde_json::from_value(event).map_err(|e| InvokeError {
        error_type: "Runtime.UnmarshalError".into(),
        error_message: format!("cannot deserialise the event: {e}"),
    })
}

fn encode<T: Serialize>(response: T) -> Result<Value, InvokeError> {
    serde_json::to_value(response).map_err(|e| InvokeError {
        error_type: "Runtime.MarshalError".into(),
        error_message: e.to_string(),
    })
}

/// Builds the handler for `binary` from `builder`'s settings, as the Lambda
/// main of that binary would at init. `Ok(None)` for an unknown binary.
/// `timeout` is the function's, from which each invocation's deadline is
/// taken, as Lambda's context gives it.
pub async fn handler_for(
    binary: &str,
    builder: &AppBuilder,
    timeout: Duration,
) -> Result<Option<Handler>, InitError> {
    Ok(Some(match binary {
        "authorizer" => {
            let verifier = builder.verifier().await?;
            let origins = Arc::new(builder.origins());
            let events = builder.events(builder.emf());
            Arc::new(move |event: Value| -> InvokeFuture {
                let verifier = verifier.clone();
                let origins = origins.clone();
                let events = events.clone();
                Box::pin(async move {
                    let event: ApiGatewayCustomAuthorizerRequestTypeRequest = decode(event)?;
                    encode(
                        handlers::authorizer(&*verifier, &origins, events.as_ref(), event).await?,
                    )
                })
            })
        }
        "connect" | "disconnect" | "message" => {
            let app = if binary == "message" {
                builder.app_verifying().await?
            } else {
                builder.app().await?
            };
            let app = Arc::new(app);
            let route = binary.to_owned();
            Arc::new(move |event: Value| -> InvokeFuture {
                let app = app.clone();
                let route = route.clone();
                Box::pin(async move {
                    let event: ApiGatewayWebsocketProxyRequest = decode(event)?;
                    let response = match route.as_str() {
                        "connect" => handlers::connect(&app, event).await?,
                        "disconnect" => handlers::disconnect(&app, event).await?,
                        _ => handlers::message(&app, event).await?,
                    };
                    encode(response)
                })
            })
        }
        "publish" => {
            let app = Arc::new(builder.app().await?);
            Arc::new(move |event: Value| -> InvokeFuture {
                let app = app.clone();
                Box::pin(async move { encode(handlers::server(&app, event).await?) })
            })
        }
        "fanout" => {
            let app = Arc::new(builder.app().await?);
            Arc::new(move |event: Value| -> InvokeFuture {
                let app = app.clone();
                Box::pin(async move {
                    let deadline = tokio::time::Instant::now() + timeout;
                    let shard: Shard = decode(event)?;
                    encode(handlers::fanout(&app, shard, deadline).await?)
                })
            })
        }
        _ => return Ok(None),
    }))
}
