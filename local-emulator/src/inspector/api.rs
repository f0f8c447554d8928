//! The inspector's HTTP surface: the page, the timeline (a snapshot and a
//! server-sent-events stream) and the open connections.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Shared;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Inspector;
use crate::http::{HttpError, json, respond};
use crate::timefmt::iso8601;

/// The page: one file, no build step.
const PAGE: &str = include_str!("../../inspector/index.html");

/// `GET /_roomcast/`.
pub(crate) async fn page() -> Response {
    let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /_roomcast/timeline`: the entries kept, oldest first.
pub(crate) async fn timeline(Shared(state): Shared<Arc<Inspector>>) -> Response {
    respond(
        StatusCode::OK,
        "application/json",
        format!("{{\"entries\":{}}}", state.timeline.snapshot()),
    )
}

/// `GET /_roomcast/timeline/stream`: each new entry as a server-sent event.
/// A reader that falls behind gets an `event: skipped` with how many.
pub(crate) async fn stream(Shared(state): Shared<Arc<Inspector>>) -> Response {
    let rx = state.timeline.subscribe();
    // The first bytes at once, so the browser's EventSource opens now.
    let hello = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(": watching\n\n".to_owned())
    });
    let entries = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = match rx.recv().await {
            Ok(e) => format!("data: {e}\n\n"),
            Err(RecvError::Lagged(n)) => format!("event: skipped\ndata: {n}\n\n"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(chunk), rx))
    });
    let mut r = Response::new(Body::from_stream(futures::StreamExt::chain(hello, entries)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `POST /_roomcast/replay` with `{"function": NAME, "event": {...}}`:
/// invokes the function again, synchronously, with the (edited) event, and
/// answers `{"result": ...}` or `{"error": ...}`. 404 for an unknown
/// function, 400 for a body that is not that shape.
pub(crate) async fn replay(
    Shared(state): Shared<Arc<Inspector>>,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| HttpError::BadRequest(format!("the body is not JSON: {e}")))?;
    let name = v["function"]
        .as_str()
        .ok_or_else(|| HttpError::BadRequest("give \"function\" (a name) and \"event\"".into()))?;
    let mut event = v
        .get("event")
        .cloned()
        .ok_or_else(|| HttpError::BadRequest("give \"event\" (the event to replay)".into()))?;
    // The timeline shows events with their credentials redacted; a replay
    // of one gets them back.
    state.timeline.restore_secrets(&mut event);
    let function = state
        .lambda
        .function(name)
        .ok_or_else(|| HttpError::NotFound(format!("no function {name}\n")))?;
    tracing::info!(function = name, "replaying an invocation");
    let answer = match function
        .call(
            "replay",
            event,
            crate::lambda::pool::InvokeContext::default(),
            &state.lambda.metrics,
        )
        .await
    {
        Ok(result) => json!({"result": result}),
        Err(e) => json!({"error": e.to_string()}),
    };
    Ok(json(StatusCode::OK, &answer))
}

/// Connections listed at most (the count of all is given beside).
const MAX_LISTED: usize = 500;

/// `GET /_roomcast/rooms`: the rooms the open connections are in, with
/// their members, member count, seq and last messages, read from the store
/// the in-process functions share (Roomcast's; empty for other apps).
/// O(open connections) store reads, only when the page asks.
pub(crate) async fn rooms(Shared(state): Shared<Arc<Inspector>>) -> Response {
    use std::collections::BTreeMap;
    let now = state.now_ms();
    let mut rooms: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for c in state.connections.all().iter().take(MAX_LISTED) {
        let Ok(memberships) = state.store.memberships_of(&c.peer.id, now).await else {
            continue;
        };
        for m in memberships {
            rooms.entry(m.room.clone()).or_default().push(json!({
                "connectionId": m.connection_id, "user": m.user, "presence": m.presence,
            }));
        }
    }
    let mut list = Vec::with_capacity(rooms.len());
    for (room, members) in rooms.into_iter().take(100) {
        let count = state.store.member_count(&room, now).await.ok();
        let seq = state.store.seq_state(&room).await.ok().map(|s| s.top);
        let recent = state
            .store
            .history_before(&room, None, 5, now)
            .await
            .map(|p| p.messages)
            .unwrap_or_default();
        list.push(json!({"room": room, "memberCount": count, "seq": seq, "members": members, "recent": recent}));
    }
    json(StatusCode::OK, &json!({"rooms": list}))
}

/// `GET /_roomcast/info`: what the page needs to open its console: the
/// stage path and whether dev tokens are served.
pub(crate) async fn info(Shared(state): Shared<Arc<Inspector>>) -> Response {
    // `roomcast events` reads `roomcastEvents` to say why nothing comes.
    let (template, events, bus) = match &state.about.profile {
        crate::template::Profile::Roomcast { event_bus } => {
            ("roomcast", event_bus.is_some(), event_bus.clone())
        }
        crate::template::Profile::Foreign => ("foreign", false, None),
    };
    json(
        StatusCode::OK,
        &json!({
            "stage": state.about.stage,
            "apiId": state.about.api_id,
            "devTokens": state.about.dev_tokens,
            "template": template,
            "roomcastEvents": events,
            "eventBus": bus,
        }),
    )
}

/// `GET /_roomcast/connections`: the open connections, with their rooms
/// (from the store the in-process functions share, when it has them),
/// frame counts and how many frames wait to be written.
pub(crate) async fn connections(Shared(state): Shared<Arc<Inspector>>) -> Response {
    let now = state.now_ms();
    let all = state.connections.all();
    let mut list = Vec::with_capacity(all.len().min(MAX_LISTED));
    for c in all.iter().take(MAX_LISTED) {
        let rooms: Vec<String> = state
            .store
            .memberships_of(&c.peer.id, now)
            .await
            .map(|ms| ms.into_iter().map(|m| m.room).collect())
            .unwrap_or_default();
        let (frames_in, frames_out, queued) = c.counts();
        list.push(json!({
            "connectionId": c.peer.id,
            "user": c.authorizer["principalId"],
            "rooms": rooms,
            "connectedAt": iso8601(c.peer.connected_at_ms),
            "lastActiveAt": iso8601(c.last_active_ms()),
            "framesIn": frames_in,
            "framesOut": frames_out,
            "queued": queued,
            "sourceIp": c.peer.source_ip,
            "authorizer": c.authorizer,
        }));
    }
    json(
        StatusCode::OK,
        &json!({"connections": list, "open": all.len()}),
    )
}
