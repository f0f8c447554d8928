//! Roomcast's functions as JSON handlers, by binary name: the table a
//! host that runs them in its own process (`roomcast dev`'s fast path) is
//! handed at start-up. Each is built as its binary's `main` (`src/bin/`)
//! builds it, and takes the event and returns the response as JSON, so
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

use crate::handlers::{self, AppBuilder, HandlerError, InitError};
use crate::shard::Shard;

/// The binaries `src/bin/` builds: the keys of the table.
pub const BINARIES: &[&str] = &[
    "authorizer",
    "connect",
    "disconnect",
    "fanout",
    "message",
    "publish",
];

/// A failed invocation, as Lambda reports it (`errorType`,
/// `errorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Lambda's `errorType`.
    pub error_type: String,
    /// Lambda's `errorMessage`.
    pub error_message: String,
}

impl From<HandlerError> for Failure {
    fn from(e: HandlerError) -> Self {
        let d: lambda_runtime::Diagnostic = e.into();
        Self {
            error_type: d.error_type,
            error_message: d.error_message,
        }
    }
}

/// The future an invocation returns.
pub type JsonFuture = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>>;

/// One function, ready to invoke with a JSON event.
pub type JsonHandler = Arc<dyn Fn(Value) -> JsonFuture + Send + Sync>;

fn decode<T: DeserializeOwned>(event: Value) -> Result<T, Failure> {
    serde_json::from_value(event).map_err(|e| Failure {
        error_type: "Runtime.UnmarshalError".into(),
        error_message: format!("cannot deserialise the event: {e}"),
    })
}

fn encode<T: Serialize>(response: T) -> Result<Value, Failure> {
    serde_json::to_value(response).map_err(|e| Failure {
        error_type: "Runtime.MarshalError".into(),
        error_message: e.to_string(),
    })
}

/// Builds the handler for `binary` from `builder`'s settings, as the Lambda
/// main of that binary (`src/bin/`) builds it at init. `Ok(None)` for an unknown binary.
/// `timeout` is the function's, from which each invocation's deadline is
/// taken, as Lambda's context gives it.
pub async fn handler_for(
    binary: &str,
    builder: &AppBuilder,
    timeout: Duration,
) -> Result<Option<JsonHandler>, InitError> {
    Ok(Some(match binary {
        "authorizer" => {
            let verifier = builder.verifier().await?;
            let origins = Arc::new(builder.origins());
            let events = builder.events(builder.emf());
            Arc::new(move |event: Value| -> JsonFuture {
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
            Arc::new(move |event: Value| -> JsonFuture {
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
            Arc::new(move |event: Value| -> JsonFuture {
                let app = app.clone();
                Box::pin(async move { encode(handlers::server(&app, event).await?) })
            })
        }
        "fanout" => {
            let app = Arc::new(builder.app().await?);
            Arc::new(move |event: Value| -> JsonFuture {
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
