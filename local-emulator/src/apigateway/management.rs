//! The `@connections` Management API, wire-compatible with
//! aws-sdk-apigatewaymanagement: POST sends a frame, GET describes, DELETE
//! closes. SigV4 signatures are accepted without verification.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::{Path, State as Shared};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use crate::apigateway::connections::{CloseReason, PostError};
use crate::http::{HttpError, json, respond};
use crate::iam::Principal;
use crate::state::State;
use crate::timefmt::iso8601;

/// Connection ids are short base64 strings; anything else is malformed.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// `/@connections/{id}`.
pub(crate) async fn by_id(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    Path(id): Path<String>,
    Trace(trace): Trace,
    Signer(caller): Signer,
    body: Body,
) -> Response {
    handle(&state, method, &id, Call { trace, caller }, body).await
}

/// `/{stage}/@connections/{id}`: the same, if the stage is this one.
pub(crate) async fn by_stage_and_id(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    Path((stage, id)): Path<(String, String)>,
    Trace(trace): Trace,
    Signer(caller): Signer,
    body: Body,
) -> Response {
    if stage != state.stage {
        return HttpError::NotFound("not found\n".into()).into_response();
    }
    handle(&state, method, &id, Call { trace, caller }, body).await
}

/// The connection id of a `POST /@connections/{id}` (or
/// `/{stage}/@connections/{id}` for this stage) whose id is well-formed,
/// decoded: the one call made per recipient of every fan-out, served
/// without the router (`post_without_router`). axum's routing, extractors
/// and middleware were 7% of the emulator's CPU under a broadcast load.
/// The SDKs percent-encode the id's `=`, `+` and `/` (every id the
/// emulator hands out ends in `=`), so those escapes are decoded here as
/// the router's `Path` would. Every other request, including one with any
/// other escape, goes through the router, which answers it the same way.
pub(crate) fn post_id<'a>(
    stage: &str,
    method: &Method,
    path: &'a str,
) -> Option<std::borrow::Cow<'a, str>> {
    if method != Method::POST {
        return None;
    }
    let rest = path.strip_prefix('/')?;
    let raw = match rest.strip_prefix("@connections/") {
        Some(id) => id,
        None => {
            let (first, tail) = rest.split_once('/')?;
            if first != stage {
                return None;
            }
            tail.strip_prefix("@connections/")?
        }
    };
    let id = decode_id(raw)?;
    valid_id(&id).then_some(id)
}

/// `raw` with each `%XX` escape of an id character decoded; `None` for
/// any other escape (left to the router).
fn decode_id(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = u8::from_str_radix(hex, 16).ok()?;
        if !(byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'-' | b'_')) {
            return None;
        }
        out.push(char::from(byte));
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(std::borrow::Cow::Owned(out))
}

/// A post `post_id` recognised: SigV4 checked (when on), then handled
/// exactly as the router's `by_id` handles it.
pub(crate) async fn post_without_router(
    state: Arc<State>,
    req: http::Request<hyper::body::Incoming>,
    id: String,
) -> Result<Response, std::convert::Infallible> {
    let req =
        match crate::sigv4::verified(&state, req.map(Body::new), crate::sigv4::EXECUTE_API).await {
            Ok(req) => req,
            Err(refused) => return Ok(refused),
        };
    let call = Call {
        trace: trace_root(req.headers()),
        caller: state.iam.as_ref().and_then(|iam| iam.caller(req.headers())),
    };
    Ok(handle(&state, Method::POST, &id, call, req.into_body()).await)
}

/// `/@connections/` with no id: always malformed.
pub(crate) async fn without_id(Shared(state): Shared<Arc<State>>, method: Method) -> Response {
    let call = Call {
        trace: None,
        caller: None,
    };
    handle(&state, method, "", call, Body::empty()).await
}

/// Who made a call: the invocation's trace root (when the caller runs in
/// one) and the function whose role signed it (when IAM is checked).
pub(crate) struct Call {
    trace: Option<String>,
    caller: Option<Arc<Principal>>,
}

/// The function a request was signed by (`crate::iam`), if any.
pub(crate) struct Signer(Option<Arc<Principal>>);

impl FromRequestParts<Arc<State>> for Signer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<State>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            state
                .iam
                .as_ref()
                .and_then(|iam| iam.caller(&parts.headers)),
        ))
    }
}

/// The caller's trace root, when it runs in a Lambda invocation: the SDKs
/// send the invocation's trace header with each call (recursion
/// detection), which ties the call to the invocation on the timeline. Read
/// from the request in place (a `HeaderMap` extractor would copy every
/// header of every post).
pub(crate) struct Trace(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Trace {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(trace_root(&parts.headers)))
    }
}

fn trace_root(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::lambda::invoke::trace_root)
}

async fn handle(state: &State, method: Method, id: &str, call: Call, body: Body) -> Response {
    let trace = call.trace;
    let outcome = match authorized(state, &method, id, call.caller.as_deref()) {
        Ok(()) => answer(state, &method, id, body).await,
        Err(denied) => Err(denied),
    };
    let result = match &outcome {
        Ok(_) => "ok",
        Err(HttpError::Api { status, .. }) => match status.as_u16() {
            410 => "gone",
            413 => "too_large",
            429 => "throttled",
            405 => "method_not_allowed",
            _ => "bad_request",
        },
        Err(HttpError::AccessDenied { .. }) => "denied",
        Err(_) => "bad_request",
    };
    state.metrics.api_call(method.as_str(), result);
    // Posts are the high-rate call: kept only while an inspector watches.
    if method != Method::POST || state.timeline.watching() {
        state.timeline.record(
            "connections-api",
            state.now_ms(),
            json!({"method": method.as_str(), "connectionId": id, "result": result, "traceId": trace}),
        );
    }
    match outcome {
        Ok(r) => r,
        Err(e) => {
            if !matches!(&e, HttpError::Api { status, .. } if *status == StatusCode::GONE) {
                tracing::info!(connection_id = %id, %method, error = %e, "@connections call refused");
            }
            e.into_response()
        }
    }
}

/// IAM's check of a function's call (API Gateway Developer Guide, "Use
/// @connections commands in your backend service": the caller needs
/// `execute-api:ManageConnections` on
/// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/@connections/{id}`).
fn authorized(
    state: &State,
    method: &Method,
    id: &str,
    caller: Option<&Principal>,
) -> Result<(), HttpError> {
    let (Some(iam), Some(caller)) = (&state.iam, caller) else {
        return Ok(());
    };
    let resource = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{method}/@connections/{id}",
        state.region,
        crate::template::ACCOUNT,
        state.api_id,
        state.stage
    );
    iam.authorize(
        caller,
        &[crate::iam::Request::new(
            "execute-api:ManageConnections",
            resource,
        )],
    )
    .map_err(|d| HttpError::AccessDenied(d.message))
}

async fn answer(
    state: &State,
    method: &Method,
    id: &str,
    body: Body,
) -> Result<Response, HttpError> {
    if !matches!(*method, Method::POST | Method::GET | Method::DELETE) {
        return Err(HttpError::Api {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "MethodNotAllowedException",
            message: "use POST, GET or DELETE".into(),
        });
    }
    if !valid_id(id) {
        return Err(HttpError::Api {
            status: StatusCode::BAD_REQUEST,
            kind: "BadRequestException",
            message: "Invalid connectionId".into(),
        });
    }
    match *method {
        Method::POST => post(state, id, body).await,
        Method::GET => describe(state, id),
        _ if state.connections.close(id, CloseReason::normal()) => {
            Ok(respond(StatusCode::NO_CONTENT, "application/json", ""))
        }
        _ => Err(HttpError::gone(id)),
    }
}

/// A fault that strikes this post: the status it answers instead (as
/// API Gateway answers it), or a stall before it is served.
async fn injected(state: &State, id: &str) -> Result<(), HttpError> {
    if state.faults.none_armed() {
        return Ok(());
    }
    let user = state
        .connections
        .get(id)
        .and_then(|c| c.authorizer["principalId"].as_str().map(str::to_owned));
    let subject = crate::faults::Subject {
        connection: Some(id),
        user: user.as_deref(),
        function: None,
    };
    match state.faults.take(crate::faults::Point::Post, subject) {
        // A 410 says the connection is gone: it is cut too (no close
        // frame), as the network failure behind a real 410 would have.
        Some(crate::faults::FaultKind::PostStatus { status: 410 }) => {
            state
                .connections
                .close(id, crate::apigateway::connections::CloseReason::abnormal());
            Err(HttpError::gone(id))
        }
        Some(crate::faults::FaultKind::PostStatus { status: 413 }) => Err(HttpError::Api {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "PayloadTooLargeException",
            message: "an injected post-status fault".into(),
        }),
        Some(crate::faults::FaultKind::PostStatus { .. }) => Err(HttpError::Api {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "LimitExceededException",
            message: "an injected post-status fault".into(),
        }),
        Some(crate::faults::FaultKind::PostStall { ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn describe(state: &State, id: &str) -> Result<Response, HttpError> {
    let c = state
        .connections
        .get(id)
        .ok_or_else(|| HttpError::gone(id))?;
    // The wire names are camelCase, as in the service model that
    // aws-sdk-apigatewaymanagement is generated from.
    Ok(json(
        StatusCode::OK,
        &json!({
            "connectedAt": iso8601(c.peer.connected_at_ms),
            "identity": {"sourceIp": c.peer.source_ip, "userAgent": c.peer.user_agent},
            "lastActiveAt": iso8601(c.last_active_ms()),
        }),
    ))
}

async fn post(state: &State, id: &str, body: Body) -> Result<Response, HttpError> {
    injected(state, id).await?;
    let limit = state.config.max_message_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(HttpError::Api {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                kind: "PayloadTooLargeException",
                message: format!("Message is larger than {limit} bytes"),
            });
        }
        Err(_) => {
            return Err(HttpError::Api {
                status: StatusCode::BAD_REQUEST,
                kind: "BadRequestException",
                message: "could not read the body".into(),
            });
        }
    };
    match state.connections.post(id, &body) {
        Ok(()) => Ok(respond(StatusCode::OK, "application/json", "")),
        Err(PostError::Throttled) => Err(HttpError::Api {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "LimitExceededException",
            message: "The client is not reading fast enough; the frame was dropped".into(),
        }),
        Err(PostError::Gone) => Err(HttpError::gone(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::post_id;
    use http::Method;

    #[test]
    fn posts_with_the_sdks_escapes_are_recognised_and_decoded() {
        // The SDKs percent-encode path labels (Signature Version 4:
        // "Create a canonical request" — each segment URI-encoded): an id
        // the emulator hands out, ending in `=`, arrives as `%3D`.
        for (path, id) in [
            ("/prod/@connections/AbC-_d1234567w%3D", "AbC-_d1234567w="),
            ("/@connections/AbC%2B%2Fd%3d", "AbC+/d="),
            ("/prod/@connections/plain=", "plain="),
            ("/@connections/%41", "A"),
            // The router's `{*id}` takes the rest of the path, too.
            ("/prod/@connections/a/b", "a/b"),
        ] {
            assert_eq!(
                post_id("prod", &Method::POST, path).as_deref(),
                Some(id),
                "{path}"
            );
        }
    }

    #[test]
    fn anything_else_is_left_to_the_router() {
        for path in [
            "/other/@connections/abc%3D",
            "/prod/@connections/",
            "/prod/@connections/a%2",
            "/prod/@connections/a%+3",
            "/prod/@connections/a%zz",
            "/prod/@connections/a%20b",
            "/prod/@connections/a%25",
            "/prod/@connections/a%C3%A9",
            "/prod/other/abc",
            "/prod",
        ] {
            assert_eq!(post_id("prod", &Method::POST, path), None, "{path}");
        }
        assert_eq!(
            post_id("prod", &Method::GET, "/prod/@connections/abc"),
            None
        );
    }
}
