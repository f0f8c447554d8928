//! The emulator's HTTP answers in one place: every refusal is an
//! [`HttpError`], turned into a response by its `IntoResponse`, in the shape
//! the real service gives for that surface.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// Why a request was refused. Each variant is one wire shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    /// The WebSocket handshake was refused, as API Gateway refuses it: the
    /// status and a JSON `{"message"}`. The client must not retry unchanged
    /// (except 500/502/503, which are worth a retry with backoff).
    #[error("{0}: {1}")]
    Handshake(StatusCode, &'static str),
    /// A Management API error, as aws-sdk-apigatewaymanagement parses it:
    /// the exception name in `x-amzn-ErrorType` and a JSON `{"message"}`.
    #[error("{kind}: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The exception name, e.g. `GoneException`.
        kind: &'static str,
        /// Details for humans.
        message: String,
    },
    /// An awsJson1_1 service error (EventBridge): the exception name in
    /// `__type` and `x-amzn-ErrorType`, and a `message`.
    #[error("{kind}: {message}")]
    Json11 {
        /// The HTTP status.
        status: StatusCode,
        /// The exception name, e.g. `ValidationException`.
        kind: &'static str,
        /// Details for humans.
        message: String,
    },
    /// IAM refused a function's call to a REST service (API Gateway's
    /// `@connections`, Lambda's Invoke API): 403 with
    /// `x-amzn-ErrorType: AccessDeniedException` and IAM's message under
    /// `Message`. The function's role lacks the right: fix the template.
    #[error("AccessDeniedException: {0}")]
    AccessDenied(String),
    /// Nothing here (static files, unknown paths): a plain-text 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// A developer endpoint was called wrongly (`/dev/token`): 400 with a
    /// JSON `{"message"}` saying what to pass.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A Lambda Runtime API refusal, as Lambda gives it: the status and a
    /// JSON `{"errorMessage", "errorType"}`. The runtime has a bug (an
    /// unknown or repeated request id, a payload too large); the instance
    /// and every other invocation are unaffected.
    #[error("{error_type}: {message}")]
    Runtime {
        /// The HTTP status.
        status: StatusCode,
        /// Lambda's `errorType`, e.g. `InvalidRequestID`.
        error_type: &'static str,
        /// Details for humans.
        message: String,
    },
    /// The emulator failed itself: 500 with a JSON `{"message"}`.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HttpError {
    /// `GoneException` for connection `id`.
    pub(crate) fn gone(id: &str) -> Self {
        Self::Api {
            status: StatusCode::GONE,
            kind: "GoneException",
            message: format!("Connection {id} is gone"),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            Self::Handshake(status, message) => json(status, &json!({"message": message})),
            Self::Api {
                status,
                kind,
                message,
            } => {
                let mut r = json(status, &json!({"message": message}));
                r.headers_mut()
                    .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    r.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
                }
                r
            }
            Self::Json11 {
                status,
                kind,
                message,
            } => {
                let mut r = json_11(status, &json!({"__type": kind, "message": message}));
                r.headers_mut()
                    .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
                r
            }
            Self::Runtime {
                status,
                error_type,
                message,
            } => json(
                status,
                &json!({"errorMessage": message, "errorType": error_type}),
            ),
            Self::AccessDenied(message) => {
                let mut r = json(StatusCode::FORBIDDEN, &json!({"Message": message}));
                r.headers_mut().insert(
                    "x-amzn-ErrorType",
                    HeaderValue::from_static("AccessDeniedException"),
                );
                r
            }
            Self::NotFound(text) => respond(StatusCode::NOT_FOUND, "text/plain", text),
            Self::BadRequest(message) => {
                json(StatusCode::BAD_REQUEST, &json!({"message": message}))
            }
            Self::Internal(message) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"message": message}),
            ),
        }
    }
}

/// A response with a body and content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    respond(status, "application/json", value.to_string())
}

/// An awsJson1_1 response.
pub(crate) fn json_11(status: StatusCode, value: &Value) -> Response {
    respond(status, "application/x-amz-json-1.1", value.to_string())
}
