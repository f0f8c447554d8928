//! The `@connections` Management API over HTTP, wire-compatible with
//! aws-sdk-apigatewaymanagement: POST sends a frame (`post`, the one
//! PostToConnection), GET describes, DELETE closes.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::{Path, State as Shared};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::request::Parts;
use http::{Method, StatusCode};
use serde_json::json;

use crate::apigateway::connections::CloseReason;
use crate::apigateway::post::{Call, Payload, trace_root};
use crate::apigateway::service::ApiGateway;
use crate::http::{HttpError, json, respond};
use crate::iam::Principal;
use crate::sigv4::Signatures;
use crate::timefmt::iso8601;

/// The API's routes, behind SigV4 verification when it is on.
pub(crate) fn router(gateway: Arc<ApiGateway>, signatures: Arc<Signatures>) -> Router {
    Router::new()
        .route("/@connections", any(without_id))
        .route("/@connections/", any(without_id))
        .route("/@connections/{*id}", any(by_id))
        .route("/{stage}/@connections/", any(without_id))
        .route("/{stage}/@connections/{*id}", any(by_stage_and_id))
        .route_layer(axum::middleware::from_fn_with_state(
            signatures,
            crate::sigv4::middleware,
        ))
        .with_state(gateway)
}

/// Connection ids are short base64 strings; anything else is malformed.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// `/@connections/{id}`.
async fn by_id(
    Shared(gateway): Shared<Arc<ApiGateway>>,
    method: Method,
    Path(id): Path<String>,
    Trace(trace): Trace,
    Signer(caller): Signer,
    body: Body,
) -> Response {
    handle(&gateway, method, &id, Call { trace, caller }, body).await
}

/// `/{stage}/@connections/{id}`: the same, if the stage is this one.
async fn by_stage_and_id(
    Shared(gateway): Shared<Arc<ApiGateway>>,
    method: Method,
    Path((stage, id)): Path<(String, String)>,
    Trace(trace): Trace,
    Signer(caller): Signer,
    body: Body,
) -> Response {
    if stage != gateway.api.stage {
        return HttpError::NotFound("not found\n".into()).into_response();
    }
    handle(&gateway, method, &id, Call { trace, caller }, body).await
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

/// A post `post_id` recognised: handled exactly as the router's `by_id`
/// handles it, SigV4 included.
pub(crate) async fn post_without_router(
    gateway: Arc<ApiGateway>,
    req: http::Request<hyper::body::Incoming>,
    id: String,
) -> Result<Response, std::convert::Infallible> {
    let (_, body, call) = match gateway.post.verified_call(req.map(Body::new)).await {
        Ok(verified) => verified,
        Err(refused) => return Ok(refused),
    };
    Ok(handle(&gateway, Method::POST, &id, call, body).await)
}

/// `/@connections/` with no id: always malformed.
async fn without_id(Shared(gateway): Shared<Arc<ApiGateway>>, method: Method) -> Response {
    handle(&gateway, method, "", Call::default(), Body::empty()).await
}

/// The function a request was signed by (`crate::iam`), if any.
struct Signer(Option<Arc<Principal>>);

impl FromRequestParts<Arc<ApiGateway>> for Signer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiGateway>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            state
                .post
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
struct Trace(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Trace {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(trace_root(&parts.headers)))
    }
}

async fn handle(
    gateway: &ApiGateway,
    method: Method,
    id: &str,
    call: Call,
    body: Body,
) -> Response {
    if let Err(e) = well_formed(&method, id) {
        let result = if method_allowed(&method) {
            "bad_request"
        } else {
            "method_not_allowed"
        };
        gateway
            .post
            .record(&method, id, result, call.trace.as_deref());
        tracing::info!(connection_id = %id, %method, error = %e, "@connections call refused");
        return e.into_response();
    }
    if method == Method::POST {
        return match gateway.post.post(id, Payload::Body(body), &call).await {
            Ok(()) => respond(StatusCode::OK, "application/json", ""),
            Err(failure) => failure.into_http(id).into_response(),
        };
    }
    let outcome = match gateway.post.authorize(&method, id, call.caller.as_deref()) {
        Ok(()) if method == Method::GET => describe(gateway, id),
        Ok(()) if gateway.connections.close(id, CloseReason::normal()) => {
            Ok(respond(StatusCode::NO_CONTENT, "application/json", ""))
        }
        Ok(()) => Err(HttpError::gone(id)),
        Err(message) => Err(HttpError::AccessDenied(message)),
    };
    let result = match &outcome {
        Ok(_) => "ok",
        Err(HttpError::AccessDenied(_)) => "denied",
        Err(_) => "gone",
    };
    gateway
        .post
        .record(&method, id, result, call.trace.as_deref());
    outcome.unwrap_or_else(|e| {
        if result == "denied" {
            tracing::info!(connection_id = %id, %method, error = %e, "@connections call refused");
        }
        e.into_response()
    })
}

fn method_allowed(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::GET | Method::DELETE)
}

fn well_formed(method: &Method, id: &str) -> Result<(), HttpError> {
    if !method_allowed(method) {
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
    Ok(())
}

fn describe(gateway: &ApiGateway, id: &str) -> Result<Response, HttpError> {
    let c = gateway
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
