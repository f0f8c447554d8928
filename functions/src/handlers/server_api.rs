//! The server API: the publish function's requests, one typed request per
//! operation, told apart by `op`. A request without `op` is a publish, as
//! before the other operations existed, so existing callers are unchanged.
//! docs/server-api.md documents each operation and its errors.

use serde_json::Value;

use super::{App, HandlerError};
use crate::protocol::server_api::Published;
pub use crate::protocol::server_api::{OPERATIONS, ServerRequest};
use crate::routes::server::{self, Kick};

/// Reads a request: `op` names the operation; none means publish.
pub(crate) fn parse(request: Value) -> Result<ServerRequest, HandlerError> {
    let Value::Object(mut fields) = request else {
        return Err(HandlerError::InvalidRequest(
            "the request must be a JSON object".into(),
        ));
    };
    let op = match fields.get("op") {
        None => {
            fields.insert("op".into(), Value::String("publish".into()));
            "publish".to_owned()
        }
        Some(Value::String(op)) => op.clone(),
        Some(_) => return Err(HandlerError::UnknownOperation("op must be a string".into())),
    };
    if !OPERATIONS.contains(&op.as_str()) {
        return Err(HandlerError::UnknownOperation(format!(
            "{op} (known: {})",
            OPERATIONS.join(", ")
        )));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| HandlerError::InvalidRequest(format!("{op}: {e}")))
}

/// Runs one request; the answer is the invocation's result.
pub async fn server(app: &App, request: Value) -> Result<Value, HandlerError> {
    let request = parse(request)?;
    if let ServerRequest::Publish(p) = request {
        let report = super::publish(app, p).await?;
        return Ok(json(Published::from(report)));
    }
    let gateway = app.gateway_at(None, None)?;
    let outbox = app.outbox();
    let ctx = app.context(&*gateway, &outbox);
    let answer = match request {
        ServerRequest::Publish(_) => Value::Null,
        ServerRequest::RoomInfo { room } => json(server::room_info(&ctx, &room).await?),
        ServerRequest::Members {
            room,
            cursor,
            limit,
        } => json(server::members(&ctx, &room, cursor.as_deref(), limit).await?),
        ServerRequest::History {
            room,
            before,
            limit,
        } => json(server::history(&ctx, &room, before, limit).await?),
        ServerRequest::Disconnect {
            user,
            code,
            reason,
            reconnect,
        } => {
            let kick = Kick::new(code, reason)?;
            json(server::disconnect_user(&ctx, &user, &kick, reconnect).await?)
        }
        ServerRequest::Revoke {
            user,
            until,
            code,
            reason,
        } => {
            let kick = Kick::new(code, reason)?;
            let until_ms = until.saturating_mul(1000);
            json(server::revoke_user(&ctx, &user, until_ms, &kick).await?)
        }
        request @ (ServerRequest::Edit { .. } | ServerRequest::Delete { .. }) => {
            match server::BackendChange::of(request) {
                Some(change) => json(server::change_message(&ctx, change).await?),
                None => Value::Null,
            }
        }
    };
    outbox.flush().await;
    Ok(answer)
}

fn json(v: impl serde::Serialize) -> Value {
    // Plain data structs: serialising cannot fail.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_without_op_is_a_publish_as_before() {
        let r = parse(json!({"room": "lobby", "data": {"x": 1}})).unwrap();
        assert!(matches!(r, ServerRequest::Publish(p) if p.room.as_deref() == Some("lobby")));
    }

    #[test]
    fn unknown_operations_and_bad_arguments_are_typed_errors() {
        assert!(matches!(
            parse(json!({"op": "explode"})),
            Err(HandlerError::UnknownOperation(m)) if m.contains("explode")
        ));
        assert!(matches!(
            parse(json!({"op": 3})),
            Err(HandlerError::UnknownOperation(_))
        ));
        assert!(matches!(
            parse(json!([1])),
            Err(HandlerError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(json!({"op": "roomInfo"})),
            Err(HandlerError::InvalidRequest(m)) if m.contains("room")
        ));
        assert!(matches!(
            parse(json!({"op": "members", "room": "r", "extra": 1})),
            Err(HandlerError::InvalidRequest(m)) if m.contains("extra")
        ));
        assert!(matches!(
            parse(json!({"op": "revoke", "user": "u", "until": "soon"})),
            Err(HandlerError::InvalidRequest(_))
        ));
        let ok = parse(json!({"op": "disconnect", "user": "u", "code": 4001})).unwrap();
        assert!(matches!(
            ok,
            ServerRequest::Disconnect {
                code: Some(4001),
                reconnect: false,
                ..
            }
        ));
    }
}
