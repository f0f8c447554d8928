//! What a socket's frames and its end invoke: route selection
//! (`$request.body.<path>`, else `$default`), the route's function with its
//! integration response, and `$disconnect`.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

use crate::apigateway::connections::Connection;
use crate::apigateway::events::request_id;
use crate::apigateway::service::{ApiGateway, Route};

/// Picks the route for a frame: `$request.body.<path>` on JSON text. The
/// selected value is stringified before matching, as API Gateway does
/// (route key `5` matches `{"action": 5}`). Anything else (not JSON, no
/// such value, an object, array or null, or no route with that key) goes
/// to `$default`. (Binary frames never get here: they close the socket.)
pub(crate) fn select_route<'a>(gateway: &'a ApiGateway, body: &str) -> Option<&'a Route> {
    let selected = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let mut cur = &v;
            for part in &gateway.api.selection_path {
                cur = cur.get(part)?;
            }
            match cur {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        })
        .filter(|key| !key.starts_with('$'))
        .and_then(|key| gateway.api.routes.get(&key));
    selected.or_else(|| gateway.api.routes.get("$default"))
}

pub(crate) fn dispatch(gateway: &Arc<ApiGateway>, conn: &Arc<Connection>, body: String) {
    let rid = request_id();
    if gateway.timeline.watching() {
        gateway.timeline.record(
            "frame-in",
            gateway.now_ms(),
            json!({
                "connectionId": conn.peer.id,
                "user": conn.authorizer["principalId"],
                "requestId": rid,
                "bytes": body.len(),
                "text": crate::timeline::excerpt(&crate::timeline::redact::redact_frame(&body), 1024),
            }),
        );
    }
    let Some(route) = select_route(gateway, &body).cloned() else {
        let frame = json!({"message": "Forbidden", "connectionId": conn.peer.id, "requestId": rid});
        let _ = conn.tx.try_send(Message::text(frame.to_string()));
        return;
    };
    let gateway = gateway.clone();
    let conn = conn.clone();
    tokio::spawn(
        async move {
            let ctx = gateway.events(&conn.peer);
            let event = ctx.message(&route.key, &body, &conn.authorizer, &rid, gateway.now_ms());
            let reply = match route.function.invoke(&route.key, event, &gateway.metrics).await {
                Ok(response) => {
                    log_error_status(&route, &conn.peer.id, &rid, &response);
                    route.returns_response.then(|| route_response(&response)).flatten()
                }
                Err(_) => Some(Message::text(
                    json!({"message": "Internal server error", "connectionId": conn.peer.id, "requestId": rid}).to_string(),
                )),
            };
            if let Some(reply) = reply {
                // The socket may have closed meanwhile; then there is nobody
                // to tell. A full queue means a client that is not reading.
                let _ = conn.tx.try_send(reply);
            }
        }
        .in_current_span(),
    );
}

/// A route's function that answers with an error status (its own
/// try/catch turned a failure into `{statusCode: 500, body}`): API Gateway
/// sends the client nothing different, so say it here, or the developer
/// sees nothing at all.
fn log_error_status(route: &Route, connection_id: &str, request_id: &str, response: &Value) {
    let Some(status) = response.get("statusCode").and_then(Value::as_u64) else {
        return;
    };
    if status < 400 {
        return;
    }
    let body = crate::lambda::log_text::first_lines(
        response
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    tracing::warn!(function = %route.function.name, route = %route.key, %connection_id, %request_id, status, %body, "the route's function answered with an error status");
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
    gateway: &Arc<ApiGateway>,
    conn: &Connection,
    code: u16,
    reason: &str,
) {
    gateway.metrics.disconnect(code);
    gateway.timeline.record(
        "disconnect",
        gateway.now_ms(),
        json!({"connectionId": conn.peer.id, "user": conn.authorizer["principalId"], "code": code, "reason": reason}),
    );
    tracing::info!(code, reason, "disconnected");
    let Some(route) = gateway.api.routes.get("$disconnect") else {
        return;
    };
    let subject = crate::faults::Subject {
        connection: Some(&conn.peer.id),
        user: conn.authorizer["principalId"].as_str(),
        function: Some(&route.function.name),
    };
    if let Some(crate::faults::FaultKind::DropDisconnect) = gateway
        .faults
        .take(crate::faults::Point::Disconnect, subject)
    {
        tracing::info!(connection_id = %conn.peer.id, "$disconnect dropped by an injected fault");
        return;
    }
    let _pending = gateway.disconnects.enter();
    let event = gateway.events(&conn.peer).disconnect(
        code,
        reason,
        &conn.authorizer,
        &request_id(),
        gateway.now_ms(),
    );
    let _ = route
        .function
        .invoke("$disconnect", event, &gateway.metrics)
        .await;
}
