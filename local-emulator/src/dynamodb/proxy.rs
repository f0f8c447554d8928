//! A pass-through in front of the DynamoDB endpoint the emulator was given
//! (moto, DynamoDB Local). Functions run as processes get its URL as
//! `AWS_ENDPOINT_URL_DYNAMODB`, so their own SDK clients reach DynamoDB
//! through it. Requests and answers pass unchanged, except while a
//! `store-error` fault is active: then a call is answered as DynamoDB
//! answers a throttled or failing request, the SDK's own retries see it,
//! and the inspector's timeline records it.
//!
//! Forwarding changes the host a request was signed for; the local
//! DynamoDB endpoints this is for do not verify signatures.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::faults::{FaultKind, Faults, Point, StoreFault, Subject};
use crate::iam::Iam;
use crate::timeline::Timeline;

/// DynamoDB's largest request is 16 MB (BatchWriteItem); anything larger
/// is refused before it is read.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// The largest answer relayed: a Query or Scan page is at most 1 MB and a
/// BatchGetItem 16 MB, so an endpoint answering more is not DynamoDB, and
/// its answer is not held in memory.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// How long DynamoDB may take to answer one call through the proxy: far
/// beyond any call's (the SDKs' own timeouts are shorter), short enough
/// that a hung endpoint holds no function forever.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A running proxy; it stops when dropped.
pub(crate) struct Proxy {
    /// `http://127.0.0.1:port`.
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Upstream {
    base: String,
    client: reqwest::Client,
    faults: Arc<Faults>,
    timeline: Arc<Timeline>,
    /// Process functions' roles, checked on each call they sign.
    iam: Option<Arc<Iam>>,
    region: String,
}

/// What else the proxy checks and strikes with.
pub(crate) struct Checks {
    pub(crate) faults: Arc<Faults>,
    pub(crate) timeline: Arc<Timeline>,
    pub(crate) iam: Option<Arc<Iam>>,
    /// The region in the tables' ARNs.
    pub(crate) region: String,
    /// `UPSTREAM_TIMEOUT` unless set (tests).
    pub(crate) upstream_timeout: Option<std::time::Duration>,
}

/// Starts a proxy to `upstream` on a free 127.0.0.1 port.
pub(crate) async fn start(upstream: &str, checks: Checks) -> std::io::Result<Proxy> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(checks.upstream_timeout.unwrap_or(UPSTREAM_TIMEOUT))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Arc::new(Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        client,
        faults: checks.faults,
        timeline: checks.timeline,
        iam: checks.iam,
        region: checks.region,
    });
    let app = Router::new()
        .fallback(forward)
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::guard::local_only));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the DynamoDB proxy stopped");
        }
    });
    tracing::info!(%url, %upstream, "DynamoDB for process functions goes through the emulator (store faults reach it)");
    Ok(Proxy { url, task })
}

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // `DynamoDB_20120810.PutItem` → `PutItem`, for the timeline and logs.
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return dynamodb_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ValidationException",
            "the request is larger than DynamoDB accepts",
        );
    };
    // IAM first, as in AWS: a call the role does not allow is refused
    // before it could be throttled.
    if let Some(iam) = &up.iam {
        let requests = || super::actions::requests(&operation, &bytes, &up.region);
        if let Err(denied) = iam.check_signed(&parts.headers, requests) {
            return access_denied(&denied.message);
        }
    }
    if let Some(FaultKind::StoreError { error }) = up.faults.take(Point::Store, Subject::default())
    {
        record(&up.timeline, &operation, error);
        return injected(error);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = up
        .client
        .request(parts.method, format!("{}{path}", up.base))
        .body(bytes);
    for (name, value) in &parts.headers {
        if *name != header::HOST && !per_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => relay(answer).await,
        Err(e) => {
            tracing::warn!(%operation, upstream = %up.base, error = %e, "DynamoDB unreachable through the proxy");
            dynamodb_error(
                StatusCode::BAD_GATEWAY,
                "InternalServerError",
                "the DynamoDB endpoint behind the emulator is unreachable",
            )
        }
    }
}

async fn relay(mut answer: reqwest::Response) -> Response {
    let status = answer.status();
    let headers = answer.headers().clone();
    let broke = |why: &str| {
        tracing::warn!(reason = why, "DynamoDB's answer was not relayed");
        dynamodb_error(StatusCode::BAD_GATEWAY, "InternalServerError", why)
    };
    if answer
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return broke("the endpoint's answer is larger than DynamoDB's largest");
    }
    let mut body = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                return broke("the endpoint's answer is larger than DynamoDB's largest");
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(_) => return broke("DynamoDB's answer broke off or took too long"),
        }
    }
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    for (name, value) in &headers {
        if !per_hop(name) {
            r.headers_mut().append(name, value.clone());
        }
    }
    r
}

/// Headers that describe one connection's framing, set anew on each side.
fn per_hop(name: &http::HeaderName) -> bool {
    matches!(
        *name,
        header::CONTENT_LENGTH | header::CONNECTION | header::TRANSFER_ENCODING
    )
}

/// DynamoDB's answer to a throttled call (400 `ThrottlingException`, which
/// the SDKs retry as a throttle) or a failing one (500
/// `InternalServerError`, retried as transient).
fn injected(error: StoreFault) -> Response {
    match error {
        StoreFault::Throttling => dynamodb_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        StoreFault::Unavailable => dynamodb_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal server error",
        ),
    }
}

/// DynamoDB's answer to a call IAM refuses: 400 with the coral service's
/// `AccessDeniedException` and IAM's message under `Message` (the SDKs
/// read the code from `__type`'s part after `#`).
fn access_denied(message: &str) -> Response {
    let body = json!({
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": message,
    });
    let mut r = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

/// An awsJson1_0 error as DynamoDB sends it.
fn dynamodb_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

/// A store error, on the inspector's timeline.
pub(crate) fn record(timeline: &Timeline, operation: &str, error: StoreFault) {
    timeline.record_now(
        "store",
        json!({
            "operation": operation,
            "error": match error {
                StoreFault::Throttling => "throttling",
                StoreFault::Unavailable => "unavailable",
            },
            "injected": true,
        }),
    );
}

#[cfg(test)]
mod tests;
