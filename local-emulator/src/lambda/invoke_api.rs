//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`)
//! on the emulator's port, so `aws lambda invoke --endpoint-url`,
//! aws-sdk-lambda and boto3 reach the template's functions exactly as in
//! AWS: `RequestResponse`, `Event` (202, queued, retried twice with
//! backoff on error) and `DryRun` (204); names as logical id, function
//! name or ARN; Lambda's errors in `x-amzn-ErrorType`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State as Shared};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{HttpError, json as json_response};
use crate::lambda::invoke::{Function, InvokeFailure};
use crate::lambda::pool::InvokeContext;
use crate::lambda::service::Lambda;

/// Lambda's limit on a synchronous request payload.
const MAX_SYNC_BYTES: usize = 6 * 1024 * 1024;
/// Lambda's limit on an asynchronous (`Event`) payload.
const MAX_ASYNC_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
pub(crate) struct Qualifier {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

/// The three invocation types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    RequestResponse,
    Event,
    DryRun,
}

/// The Invoke API's route, behind SigV4 verification when it is on.
pub(crate) fn router(
    lambda: Arc<Lambda>,
    signatures: Arc<crate::sigv4::Signatures>,
) -> axum::Router {
    axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(invoke),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            signatures,
            crate::sigv4::middleware,
        ))
        .with_state(lambda)
}

/// `POST /2015-03-31/functions/{name}/invocations`.
async fn invoke(
    Shared(lambda): Shared<Arc<Lambda>>,
    Path(name): Path<String>,
    Query(q): Query<Qualifier>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    authorized(&lambda, &headers, &name, q.qualifier.as_deref())?;
    let (function, _) = find(&lambda, &name, q.qualifier.as_deref())?;
    let kind = kind(&headers)?;
    let limit = if kind == Kind::Event {
        MAX_ASYNC_BYTES
    } else {
        MAX_SYNC_BYTES
    };
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        api(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
    })?;
    let event: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            api(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not parse request body into json: {e}"),
            )
        })?
    };
    let context = InvokeContext {
        client_context: client_context(&headers)?,
        cognito_identity: None,
        crash_after: None,
    };
    match kind {
        Kind::DryRun => Ok(StatusCode::NO_CONTENT.into_response()),
        Kind::Event => {
            lambda.queue.enqueue(function, event, context);
            Ok(executed(StatusCode::ACCEPTED, Body::empty()))
        }
        Kind::RequestResponse => Ok(run_sync(&lambda, &function, event, context).await),
    }
}

async fn run_sync(
    lambda: &Lambda,
    function: &Arc<Function>,
    event: Value,
    context: InvokeContext,
) -> Response {
    match function
        .call("invoke", event, context, &lambda.metrics)
        .await
    {
        Ok(v) => executed(StatusCode::OK, Body::from(v.to_string())),
        // Lambda refuses before running anything: not a function error
        // but the API's own 429 (Invoke, "Errors": TooManyRequestsException).
        Err(InvokeFailure::Throttled) => throttled(),
        Err(e) => {
            let mut r = executed(StatusCode::OK, Body::from(error_document(&e).to_string()));
            r.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            r
        }
    }
}

/// The function a name designates: a logical id, a function name, or an
/// ARN (full or partial), with `$LATEST` as the only qualifier.
fn find(
    lambda: &Lambda,
    name: &str,
    qualifier: Option<&str>,
) -> Result<(Arc<Function>, String), HttpError> {
    let bare = name.rsplit_once(":function:").map_or(name, |(_, n)| n);
    let (bare, inline) = match bare.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (bare, None),
    };
    let not_found = || {
        api(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {}", lambda.function_arn(bare)),
        )
    };
    if let Some(q) = qualifier.or(inline)
        && q != "$LATEST"
    {
        return Err(not_found());
    }
    lambda
        .function(bare)
        .map(|f| (f, bare.to_owned()))
        .ok_or_else(not_found)
}

/// IAM's check of a function's call (Lambda Developer Guide, "Identity-based
/// IAM policies for Lambda": `lambda:InvokeFunction` on the function's ARN,
/// with `:{qualifier}` when one is given). A function named here by its
/// logical id (which only the emulator accepts) is checked by its ARN.
fn authorized(
    lambda: &Lambda,
    headers: &HeaderMap,
    name: &str,
    qualifier: Option<&str>,
) -> Result<(), HttpError> {
    let Some(iam) = &lambda.iam else {
        return Ok(());
    };
    let resource = || {
        let mut arn = if name.starts_with("arn:") {
            name.to_owned()
        } else {
            let (bare, inline) = name
                .split_once(':')
                .map_or((name, None), |(n, q)| (n, Some(q)));
            let real = lambda
                .function(bare)
                .map_or_else(|| bare.to_owned(), |f| f.function_name.clone());
            let unqualified = lambda.function_arn(&real);
            inline.map_or(unqualified.clone(), |q| format!("{unqualified}:{q}"))
        };
        if let Some(q) = qualifier {
            arn = format!("{arn}:{q}");
        }
        vec![crate::iam::Request::new("lambda:InvokeFunction", arn)]
    };
    iam.check_signed(headers, resource)
        .map_err(|d| HttpError::AccessDenied(d.message))
}

/// `X-Amz-Client-Context` is base64 JSON on the wire; the runtime gets the
/// JSON itself in `Lambda-Runtime-Client-Context`, as in Lambda.
fn client_context(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    use base64::Engine;
    let Some(raw) = header(headers, "x-amz-client-context") else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object()))
        .map(Some)
        .ok_or_else(|| {
            api(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "Client context must be a valid Base64-encoded JSON object.".into(),
            )
        })
}

fn kind(headers: &HeaderMap) -> Result<Kind, HttpError> {
    match header(headers, "x-amz-invocation-type").as_deref() {
        None | Some("RequestResponse") => Ok(Kind::RequestResponse),
        Some("Event") => Ok(Kind::Event),
        Some("DryRun") => Ok(Kind::DryRun),
        Some(other) => Err(api(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            format!(
                "invalid X-Amz-Invocation-Type {other:?}: use RequestResponse, Event or DryRun"
            ),
        )),
    }
}

/// Lambda's error document for a failed synchronous invocation.
fn error_document(e: &InvokeFailure) -> Value {
    match e {
        InvokeFailure::Error(e) => {
            json!({"errorMessage": e.error_message, "errorType": e.error_type})
        }
        InvokeFailure::Timeout(d) => json!({
            "errorMessage": format!("Task timed out after {:.2} seconds", d.as_secs_f64()),
            "errorType": "Sandbox.Timedout",
        }),
        InvokeFailure::Panicked => {
            json!({"errorMessage": "the handler panicked", "errorType": "Runtime.ExitError"})
        }
        InvokeFailure::Closed => {
            json!({"errorMessage": "the function is shutting down", "errorType": "ServiceException"})
        }
        InvokeFailure::Throttled => {
            json!({"errorMessage": "Rate Exceeded.", "errorType": "TooManyRequestsException"})
        }
    }
}

/// Lambda's answer when the function's concurrency is exhausted.
fn throttled() -> Response {
    let mut r = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        }),
    );
    r.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static("TooManyRequestsException"),
    );
    r
}

fn executed(status: StatusCode, body: Body) -> Response {
    let mut r = json_response(status, &Value::Null);
    *r.body_mut() = body;
    r.headers_mut().insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    r
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn api(status: StatusCode, kind: &'static str, message: String) -> HttpError {
    HttpError::Api {
        status,
        kind,
        message,
    }
}
