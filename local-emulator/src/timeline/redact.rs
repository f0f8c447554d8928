//! Secrets kept off the timeline (docs/security.md): what the inspector
//! keeps and streams is readable by anything that reads the page, so the
//! credentials in an event are replaced by a marker before it is kept: the
//! `token` query parameter (where Roomcast's clients put their JWT), and
//! the `Authorization`, `Cookie` and `Sec-WebSocket-Protocol` headers
//! (browsers send a token in the last). An `auth` frame's `token` too, in
//! the frame and in the `body` of the event it makes.
//!
//! The values taken out are kept beside the timeline, in memory only and
//! never served, by request id, so that replaying a kept event restores
//! them where the marker is still in place.

use serde_json::Value;

/// What a secret's value becomes.
pub(crate) const REDACTED: &str = "[redacted]";

/// Query parameters that carry credentials.
const SECRET_PARAMETERS: &[&str] = &["token"];
/// Headers that carry credentials (names compared without case: API
/// Gateway keeps the client's spelling).
const SECRET_HEADERS: &[&str] = &["authorization", "cookie", "sec-websocket-protocol"];

/// One value taken out: the map it was in (none: the event itself), its
/// key, the value, and what replaced it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Secret {
    map: Option<&'static str>,
    key: String,
    value: Value,
    replaced: Value,
}

/// Replaces the event's secrets by [`REDACTED`]; returns what it took.
pub(crate) fn redact_event(event: &mut Value) -> Vec<Secret> {
    let mut taken = Vec::new();
    for (map, names) in [
        ("queryStringParameters", SECRET_PARAMETERS),
        ("multiValueQueryStringParameters", SECRET_PARAMETERS),
        ("headers", SECRET_HEADERS),
        ("multiValueHeaders", SECRET_HEADERS),
    ] {
        let Some(Value::Object(entries)) = event.get_mut(map) else {
            continue;
        };
        for (key, value) in entries.iter_mut() {
            if !names.iter().any(|n| key.eq_ignore_ascii_case(n)) {
                continue;
            }
            let marker = match value {
                Value::Array(items) => Value::Array(vec![Value::from(REDACTED); items.len()]),
                _ => Value::from(REDACTED),
            };
            taken.push(Secret {
                map: Some(map),
                key: key.clone(),
                value: std::mem::replace(value, marker.clone()),
                replaced: marker,
            });
        }
    }
    if let Some(Value::String(body)) = event.get_mut("body")
        && let std::borrow::Cow::Owned(redacted) = redact_frame(body)
    {
        let replaced = Value::String(redacted);
        taken.push(Secret {
            map: None,
            key: "body".into(),
            value: Value::String(std::mem::take(body)),
            replaced: replaced.clone(),
        });
        event["body"] = replaced;
    }
    taken
}

/// Puts `secrets` back where the event still holds the marker.
pub(crate) fn restore(event: &mut Value, secrets: &[Secret]) {
    for s in secrets {
        let map = match s.map {
            Some(m) => event.get_mut(m),
            None => Some(&mut *event),
        };
        let Some(slot) = map.and_then(|m| m.get_mut(&s.key)) else {
            continue;
        };
        if *slot == s.replaced {
            *slot = s.value.clone();
        }
    }
}

/// A client frame with its `token` (the `auth` action's) replaced.
pub(crate) fn redact_frame(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("\"token\"") {
        return std::borrow::Cow::Borrowed(text);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut m)) if m.contains_key("token") => {
            m.insert("token".into(), Value::from(REDACTED));
            std::borrow::Cow::Owned(Value::Object(m).to_string())
        }
        // Not JSON (cut, or garbage): no telling where a token ends.
        Err(_) => std::borrow::Cow::Owned(format!("{REDACTED} (a frame naming a token, not JSON)")),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn credentials_are_replaced_and_come_back_on_replay() {
        let original = json!({
            "queryStringParameters": {"token": "eyJ.secret.jwt", "room": "lobby"},
            "multiValueQueryStringParameters": {"token": ["eyJ.secret.jwt"]},
            "headers": {"Authorization": "Bearer x", "cookie": "s=1", "Sec-WebSocket-Protocol": "roomcast, eyJ.secret.jwt", "Host": "h"},
            "multiValueHeaders": {"Sec-WebSocket-Protocol": ["roomcast, eyJ.secret.jwt"]},
            "requestContext": {"requestId": "r1"},
            "body": "{\"action\":\"auth\",\"token\":\"eyJ.secret.jwt\"}"
        });
        let mut kept = original.clone();
        let secrets = redact_event(&mut kept);
        assert_eq!(secrets.len(), 7);
        let text = kept.to_string();
        assert!(
            !text.contains("secret") && !text.contains("Bearer") && !text.contains("s=1"),
            "{text}"
        );
        assert_eq!(kept["queryStringParameters"]["room"], "lobby");
        assert_eq!(kept["headers"]["Host"], "h");
        // Replayed as kept: the originals come back.
        let mut replay = kept.clone();
        restore(&mut replay, &secrets);
        assert_eq!(replay, original);
        // A value the developer edited stays edited.
        let mut edited = kept.clone();
        edited["queryStringParameters"]["token"] = json!("another");
        restore(&mut edited, &secrets);
        assert_eq!(edited["queryStringParameters"]["token"], "another");
        assert_eq!(edited["headers"]["Authorization"], "Bearer x");
    }

    #[test]
    fn an_auth_frames_token_is_replaced() {
        assert_eq!(
            redact_frame(r#"{"action":"auth","token":"eyJ.secret","ref":1}"#),
            r#"{"action":"auth","ref":1,"token":"[redacted]"}"#
        );
        assert!(!redact_frame(r#"{"action":"auth","token":"eyJ.sec"#).contains("eyJ"));
        assert_eq!(redact_frame(r#"{"action":"send"}"#), r#"{"action":"send"}"#);
    }
}
