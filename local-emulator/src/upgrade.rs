//! The WebSocket handshake, API Gateway style: identity sources, the
//! REQUEST authorizer and `$connect` all run before the 101, and decide it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use crate::connections::{Connection, new_connection_id};
use crate::events::{EventContext, HttpParts, request_id};
use crate::server::{Body, respond};
use crate::state::State;
use crate::util::{now_ms, parse_query};

/// Whether this request asks for a WebSocket upgrade.
pub(crate) fn is_websocket<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    respond(
        status,
        "application/json",
        json!({"message": message}).to_string(),
    )
}

pub(crate) async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let connection_id = new_connection_id();
    let span = tracing::info_span!("connect", connection_id = %connection_id);
    let response = handshake(&state, peer, &mut req, connection_id)
        .instrument(span)
        .await;
    state.metrics.connect(response.status().as_u16());
    response
}

async fn handshake(
    state: &Arc<State>,
    peer: SocketAddr,
    req: &mut Request<Incoming>,
    connection_id: String,
) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/');
    if !(path.is_empty() || path == format!("/{}", state.stage)) {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes);
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = key.filter(|_| version_ok) else {
        return plain(StatusCode::BAD_REQUEST, "Bad WebSocket upgrade request");
    };
    let accept = derive_accept_key(key);
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }

    let mut http = HttpParts {
        headers: BTreeMap::new(),
        query: parse_query(req.uri().query()),
    };
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            http.headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(v.to_owned());
        }
    }
    let connected_at = now_ms();
    let domain = http.header("host").unwrap_or("127.0.0.1").to_owned();
    let user_agent = http.header("user-agent").unwrap_or_default().to_owned();
    let source_ip = peer.ip().to_string();
    let ctx = EventContext {
        api_id: &state.api_id,
        stage: &state.stage,
        domain_name: &domain,
        connection_id: &connection_id,
        connected_at_ms: connected_at,
        source_ip: &source_ip,
        user_agent: &user_agent,
    };

    // 1. Identity sources, then the authorizer.
    let mut authorizer = Value::Null;
    if let Some(auth) = &state.authorizer {
        if let Some(missing) = auth
            .identity_sources
            .iter()
            .find(|s| !identity_present(s, &http))
        {
            tracing::info!(source = %missing, "identity source missing: 401 without invoking the authorizer");
            return plain(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let rid = request_id();
        match auth
            .function
            .invoke(
                "authorizer",
                ctx.authorizer(&http, &rid, now_ms()),
                &state.metrics,
            )
            .await
        {
            Ok(policy) => match allowed(&policy) {
                Some(context) => authorizer = context,
                None => return plain(StatusCode::FORBIDDEN, "Forbidden"),
            },
            Err(crate::invoke::InvokeFailure::Error(e)) if e.ends_with("Unauthorized") => {
                return plain(StatusCode::UNAUTHORIZED, "Unauthorized");
            }
            Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        }
    }

    // 2. `$connect`, when the template has it.
    let mut protocol: Option<HeaderValue> = None;
    if let Some(route) = state.routes.get("$connect") {
        let rid = request_id();
        let event = ctx.connect(&http, &authorizer, &rid, now_ms());
        match route
            .function
            .invoke("$connect", event, &state.metrics)
            .await
        {
            Ok(response) => {
                let status = response
                    .get("statusCode")
                    .and_then(Value::as_u64)
                    .unwrap_or(200);
                if !(200..300).contains(&status) {
                    let code = u16::try_from(status)
                        .ok()
                        .and_then(|s| StatusCode::from_u16(s).ok());
                    return plain(
                        code.unwrap_or(StatusCode::BAD_GATEWAY),
                        "Connection rejected",
                    );
                }
                // Echo a subprotocol only if $connect chose one, as API Gateway does.
                protocol = response_header(&response, "sec-websocket-protocol")
                    .and_then(|p| HeaderValue::from_str(&p).ok());
            }
            Err(_) => return plain(StatusCode::BAD_GATEWAY, "Internal server error"),
        }
    }

    // 3. The 101, and the socket's life in a task of its own.
    let on_upgrade = hyper::upgrade::on(req);
    let state = state.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(state.config.outbound_queue);
    let connection = Arc::new(Connection::new(
        connection_id.clone(),
        tx,
        connected_at,
        source_ip.clone(),
        user_agent.clone(),
        authorizer,
    ));
    let ws_config = WebSocketConfig::default()
        .max_frame_size(Some(state.config.max_frame_bytes))
        .max_message_size(Some(state.config.max_message_bytes))
        // tungstenite's default 128 KiB read buffer per socket dominates
        // idle memory; frames larger than this still work (it grows).
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_config),
                )
                .await;
                crate::socket::run(state, connection, ws, rx, domain).await;
            }
            Err(e) => {
                tracing::warn!(connection_id = %connection.id, error = %e, "upgrade failed after $connect");
                crate::socket::disconnected(
                    &state,
                    &connection,
                    1006,
                    "Connection was closed abnormally",
                    &domain,
                )
                .await;
            }
        }
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    tracing::info!("connected");
    response
}

/// `route.request.querystring.X` / `route.request.header.X` present and non-empty.
fn identity_present(source: &str, http: &HttpParts) -> bool {
    if let Some(name) = source.strip_prefix("route.request.querystring.") {
        return http
            .query
            .get(name)
            .is_some_and(|v| v.iter().any(|s| !s.is_empty()));
    }
    if let Some(name) = source.strip_prefix("route.request.header.") {
        return http.header(name).is_some_and(|v| !v.is_empty());
    }
    // Stage variables and context sources are always present offline.
    true
}

/// An Allow policy's context (with `principalId`), or `None` for Deny.
fn allowed(policy: &Value) -> Option<Value> {
    let statements = policy.get("policyDocument")?.get("Statement")?.as_array()?;
    let effect = |e: &str| {
        statements
            .iter()
            .any(|s| s.get("Effect").and_then(Value::as_str) == Some(e))
    };
    if effect("Deny") || !effect("Allow") {
        return None;
    }
    let mut context = match policy.get("context") {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    if let Some(p) = policy.get("principalId") {
        context.insert("principalId".into(), p.clone());
    }
    context.insert("integrationLatency".into(), json!(0));
    Some(Value::Object(context))
}

fn response_header(response: &Value, name: &str) -> Option<String> {
    let headers = response.get("headers")?.as_object()?;
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}
