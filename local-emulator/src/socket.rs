//! One connection's life: frames in and out, limits, timers, route
//! selection and invocation, and `$disconnect` at the end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::Instrument;

use crate::connections::Connection;
use crate::events::{EventContext, request_id};
use crate::state::{Route, State};
use crate::util::now_ms;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

const ABNORMAL: (u16, &str) = (1006, "Connection was closed abnormally");
const GOING_AWAY: (u16, &str) = (1001, "Going away");

pub(crate) async fn run(
    state: Arc<State>,
    conn: Arc<Connection>,
    ws: Socket,
    rx: mpsc::Receiver<Message>,
    domain: String,
) {
    let span = tracing::info_span!("socket", connection_id = %conn.id);
    async {
        // Registered only now: a post before this point is 410, as on AWS.
        state.connections.insert(conn.clone());
        let (code, reason) = pump(&state, &conn, ws, rx, &domain).await;
        state.connections.remove(&conn.id);
        disconnected(&state, &conn, code, &reason, &domain).await;
    }
    .instrument(span)
    .await;
}

async fn pump(
    state: &Arc<State>,
    conn: &Arc<Connection>,
    ws: Socket,
    mut rx: mpsc::Receiver<Message>,
    domain: &str,
) -> (u16, String) {
    let (mut sink, mut stream) = ws.split();
    let max_deadline = Instant::now() + state.config.max_connection_duration;
    let idle = state.config.idle_timeout;
    let close_with = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        }))
    };
    let outcome = loop {
        let idle_for =
            Duration::from_millis(u64::try_from(now_ms() - conn.last_active_ms()).unwrap_or(0));
        let idle_deadline = Instant::now() + idle.saturating_sub(idle_for);
        tokio::select! {
            reason = conn.close_requested() => {
                let _ = sink.send(close_with(reason.code, &reason.reason)).await;
                break (reason.code, reason.reason);
            }
            () = sleep_until(max_deadline) => {
                tracing::info!("maximum connection duration reached");
                let _ = sink.send(close_with(GOING_AWAY.0, GOING_AWAY.1)).await;
                break (GOING_AWAY.0, GOING_AWAY.1.to_owned());
            }
            () = sleep_until(idle_deadline) => {
                if now_ms() - conn.last_active_ms() >= i64::try_from(idle.as_millis()).unwrap_or(i64::MAX) {
                    tracing::info!("idle timeout");
                    let _ = sink.send(close_with(GOING_AWAY.0, GOING_AWAY.1)).await;
                    break (GOING_AWAY.0, GOING_AWAY.1.to_owned());
                }
            }
            out = rx.recv() => {
                let Some(message) = out else { break (ABNORMAL.0, ABNORMAL.1.to_owned()) };
                conn.touch(now_ms());
                state.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
                if sink.send(message).await.is_err() {
                    break (ABNORMAL.0, ABNORMAL.1.to_owned());
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    conn.touch(now_ms());
                    state.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
                    dispatch(state, conn, domain, text.as_str().to_owned(), false);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    conn.touch(now_ms());
                    state.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
                    let body = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    dispatch(state, conn, domain, body, true);
                }
                // Pings are answered by tungstenite; control frames are not activity.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (1005, "Client-side close frame status not set".to_owned()),
                    };
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    tracing::info!(size, max_size, "frame or message too big");
                    state.metrics.error("message_too_big");
                    let _ = sink.send(close_with(1009, "Message too big")).await;
                    break (1009, "Message too big".to_owned());
                }
                Some(Err(WsError::Utf8(_))) => {
                    state.metrics.error("invalid_utf8");
                    let _ = sink.send(close_with(1007, "Invalid frame payload data")).await;
                    break (1007, "Invalid frame payload data".to_owned());
                }
                Some(Err(WsError::Protocol(e))) => {
                    tracing::info!(error = %e, "protocol error");
                    let _ = sink.send(close_with(1002, "Protocol error")).await;
                    break (1002, "Protocol error".to_owned());
                }
                Some(Err(_)) | None => break (ABNORMAL.0, ABNORMAL.1.to_owned()),
            },
        }
    };
    let _ = sink.close().await;
    outcome
}

/// Picks the route for a frame: `$request.body.<path>` on JSON text; anything
/// else, or a key with no route, goes to `$default`.
fn select_route<'a>(state: &'a State, body: &str, is_binary: bool) -> Option<&'a Route> {
    let selected = (!is_binary)
        .then(|| serde_json::from_str::<Value>(body).ok())
        .flatten()
        .and_then(|v| {
            let mut cur = &v;
            for part in &state.selection_path {
                cur = cur.get(part)?;
            }
            cur.as_str().map(str::to_owned)
        })
        .filter(|key| !key.starts_with('$'))
        .and_then(|key| state.routes.get(&key));
    selected.or_else(|| state.routes.get("$default"))
}

fn dispatch(
    state: &Arc<State>,
    conn: &Arc<Connection>,
    domain: &str,
    body: String,
    is_binary: bool,
) {
    let rid = request_id();
    let Some(route) = select_route(state, &body, is_binary).cloned() else {
        let frame = json!({"message": "Forbidden", "connectionId": conn.id, "requestId": rid});
        let _ = conn.tx.try_send(Message::text(frame.to_string()));
        return;
    };
    let state = state.clone();
    let conn = conn.clone();
    let domain = domain.to_owned();
    tokio::spawn(
        async move {
            let ctx = EventContext {
                api_id: &state.api_id,
                stage: &state.stage,
                domain_name: &domain,
                connection_id: &conn.id,
                connected_at_ms: conn.connected_at_ms,
                source_ip: &conn.source_ip,
                user_agent: &conn.user_agent,
            };
            let event = ctx.message(&route.key, &body, is_binary, &conn.authorizer, &rid, now_ms());
            let reply = match route.function.invoke(&route.key, event, &state.metrics).await {
                Ok(response) if route.returns_response => route_response(&response),
                Ok(_) => None,
                Err(_) => Some(Message::text(
                    json!({"message": "Internal server error", "connectionId": conn.id, "requestId": rid}).to_string(),
                )),
            };
            if let Some(reply) = reply {
                // The socket may have closed meanwhile; then there is nobody to tell.
                let _ = conn.tx.send(reply).await;
            }
        }
        .in_current_span(),
    );
}

/// The integration response's body as a frame (binary when base64-encoded).
fn route_response(response: &Value) -> Option<Message> {
    let body = response.get("body")?.as_str().filter(|b| !b.is_empty())?;
    if response.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        return Some(Message::binary(bytes));
    }
    Some(Message::text(body.to_owned()))
}

/// Invokes `$disconnect` for a closed connection (time-bounded by the
/// function's timeout), counting it so shutdown can wait for it.
pub(crate) async fn disconnected(
    state: &Arc<State>,
    conn: &Connection,
    code: u16,
    reason: &str,
    domain: &str,
) {
    state.metrics.disconnect(code);
    tracing::info!(code, reason, "disconnected");
    let Some(route) = state.routes.get("$disconnect") else {
        return;
    };
    state.pending_disconnects.fetch_add(1, Ordering::SeqCst);
    let ctx = EventContext {
        api_id: &state.api_id,
        stage: &state.stage,
        domain_name: domain,
        connection_id: &conn.id,
        connected_at_ms: conn.connected_at_ms,
        source_ip: &conn.source_ip,
        user_agent: &conn.user_agent,
    };
    let event = ctx.disconnect(code, reason, &conn.authorizer, &request_id(), now_ms());
    let _ = route
        .function
        .invoke("$disconnect", event, &state.metrics)
        .await;
    state.pending_disconnects.fetch_sub(1, Ordering::SeqCst);
}
