//! The `@connections` Management API, wire-compatible with
//! aws-sdk-apigatewaymanagement: POST sends a frame, GET describes, DELETE
//! closes. SigV4 signatures are accepted without verification.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;
use tokio_tungstenite::tungstenite::Message;

use crate::connections::CloseReason;
use crate::server::{Body, json_response, respond};
use crate::state::State;
use crate::util::iso8601;

/// An error as API Gateway sends it: the type in `x-amzn-ErrorType`, a
/// JSON body with `message`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut r = json_response(status, &json!({"message": message}));
    if let Ok(v) = HeaderValue::from_str(kind) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r
}

fn gone(id: &str) -> Response<Body> {
    error(
        StatusCode::GONE,
        "GoneException",
        &format!("Connection {id} is gone"),
    )
}

/// Connection ids are short base64 strings; anything else is malformed.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>, id: String) -> Response<Body> {
    let method = req.method().clone();
    let response = answer(state, req, &id).await;
    let result = match response.status().as_u16() {
        200 | 204 => "ok",
        410 => "gone",
        413 => "too_large",
        429 => "throttled",
        405 => "method_not_allowed",
        _ => "bad_request",
    };
    state.metrics.api_call(method.as_str(), result);
    if response.status().is_client_error() && response.status() != StatusCode::GONE {
        tracing::info!(connection_id = %id, %method, status = response.status().as_u16(), "@connections call refused");
    }
    response
}

async fn answer(state: &State, req: Request<Incoming>, id: &str) -> Response<Body> {
    let method = req.method().clone();
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            "use POST, GET or DELETE",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
        return r;
    }
    if !valid_id(id) {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Invalid connectionId",
        );
    }
    match method {
        Method::POST => post(state, req, id).await,
        Method::GET => match state.connections.get(id) {
            Some(c) => json_response(
                StatusCode::OK,
                // The wire names are camelCase, as in the service model that
                // aws-sdk-apigatewaymanagement is generated from.
                &json!({
                    "connectedAt": iso8601(c.connected_at_ms),
                    "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
                    "lastActiveAt": iso8601(c.last_active_ms()),
                }),
            ),
            None => gone(id),
        },
        _ => {
            let closing = state.connections.close(
                id,
                CloseReason {
                    code: 1000,
                    reason: String::new(),
                },
            );
            if closing {
                respond(StatusCode::NO_CONTENT, "application/json", "")
            } else {
                gone(id)
            }
        }
    }
}

async fn post(state: &State, req: Request<Incoming>, id: &str) -> Response<Body> {
    let limit = state.config.max_message_bytes;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                &format!("Message is larger than {limit} bytes"),
            );
        }
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "could not read the body",
            );
        }
    };
    let Some(conn) = state.connections.get(id) else {
        return gone(id);
    };
    let frame = match std::str::from_utf8(&body) {
        Ok(text) => Message::text(text.to_owned()),
        Err(_) => Message::binary(body),
    };
    match conn.tx.try_send(frame) {
        Ok(()) => respond(StatusCode::OK, "application/json", ""),
        Err(TrySendError::Full(_)) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "The client is not reading fast enough; the frame was dropped",
        ),
        Err(TrySendError::Closed(_)) => gone(id),
    }
}
