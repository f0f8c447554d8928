//! The Lambda Runtime API (version 2018-06-01) for one execution
//! environment, as AWS documents it: `/next` holds the request until an
//! invocation arrives; answers are checked against the ids handed out.
//! Each instance gets its own listener, so `AWS_LAMBDA_RUNTIME_API` is a
//! plain `host:port`, exactly as in Lambda, and every runtime interface
//! client (Rust, Python, Node) works unchanged.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::sandbox::{AnswerError, Reply, Sandbox};
use crate::http::{HttpError, respond};
use crate::lambda::registry::InvokeError;

/// Lambda's limit on a synchronous response payload.
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Error reports are small; a bigger one is cut, not refused.
const MAX_ERROR_MESSAGE_CHARS: usize = 64 * 1024;

/// The most of an error report that is read.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// The router for one sandbox.
pub(crate) fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|| async { HttpError::NotFound("no such Runtime API path".into()) })
        .with_state(sandbox)
        // Only the runtime this instance started calls it, at the
        // 127.0.0.1 address it was given: a rebound name is refused.
        .layer(axum::middleware::from_fn(crate::guard::local_only))
}

async fn next(State(sandbox): State<Arc<Sandbox>>) -> Response {
    let Some(next) = sandbox.next().await else {
        // The instance is being torn down: nothing will come.
        return HttpError::Runtime {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "Runtime.Shutdown",
            message: "this execution environment is shutting down".into(),
        }
        .into_response();
    };
    let mut r = respond(StatusCode::OK, "application/json", next.event);
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", &next.request_id);
    set("lambda-runtime-deadline-ms", &next.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &sandbox.function_arn);
    set("lambda-runtime-trace-id", &next.trace_id);
    if let Some(c) = &next.client_context {
        set("lambda-runtime-client-context", c);
    }
    if let Some(c) = &next.cognito_identity {
        set("lambda-runtime-cognito-identity", c);
    }
    r
}

async fn response(
    State(sandbox): State<Arc<Sandbox>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, HttpError> {
    // Read at most the limit: a runtime posting more fails its invocation
    // as Lambda fails it (never leaving it unanswered), and is told so.
    let Ok(body) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        let err = InvokeError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            error_message: format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            ),
        };
        let message = err.error_message.clone();
        answer(&sandbox, &id, Reply::Error(err))?;
        return Err(HttpError::Runtime {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error_type: "RequestEntityTooLarge",
            message,
        });
    };
    answer(&sandbox, &id, Reply::Response(body))?;
    Ok(StatusCode::ACCEPTED)
}

async fn error(
    State(sandbox): State<Arc<Sandbox>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, HttpError> {
    let body = read_report(body).await;
    answer(&sandbox, &id, Reply::Error(reported_error(&headers, &body)))?;
    Ok(StatusCode::ACCEPTED)
}

async fn init_error(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, HttpError> {
    let body = read_report(body).await;
    sandbox
        .fail_init(reported_error(&headers, &body))
        .map_err(refusal)?;
    Ok(StatusCode::ACCEPTED)
}

/// An error report, or a note that it was too large or unreadable (the
/// invocation fails either way).
async fn read_report(body: Body) -> Bytes {
    axum::body::to_bytes(body, MAX_ERROR_BYTES)
        .await
        .unwrap_or_else(|_| Bytes::from_static(b"the error report was too large or cut off"))
}

fn answer(sandbox: &Sandbox, id: &str, reply: Reply) -> Result<(), HttpError> {
    sandbox.answer(id, reply).map_err(refusal)
}

fn refusal(e: AnswerError) -> HttpError {
    let (status, error_type) = match e {
        AnswerError::Unknown(_) => (StatusCode::BAD_REQUEST, "InvalidRequestID"),
        AnswerError::AlreadyAnswered(_) | AnswerError::InitFinished => {
            (StatusCode::FORBIDDEN, "InvalidStateTransition")
        }
    };
    HttpError::Runtime {
        status,
        error_type,
        message: e.to_string(),
    }
}

/// The runtime's error document, `{"errorMessage", "errorType"}`, with the
/// `Lambda-Runtime-Function-Error-Type` header as the fallback type. A body
/// that is not that document is kept as the message: a malformed report
/// still fails the invocation, with whatever the runtime said.
fn reported_error(headers: &HeaderMap, body: &[u8]) -> InvokeError {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Document {
        error_message: Option<String>,
        error_type: Option<String>,
    }
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let (message, doc_type) = match serde_json::from_slice::<Document>(body) {
        Ok(d) => (d.error_message.unwrap_or_default(), d.error_type),
        Err(_) => (String::from_utf8_lossy(body).into_owned(), None),
    };
    InvokeError {
        error_type: doc_type
            .filter(|t| !t.is_empty())
            .or(header_type)
            .unwrap_or_else(|| "Runtime.Unknown".into()),
        error_message: message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect(),
    }
}
