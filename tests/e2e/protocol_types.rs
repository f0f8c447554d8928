//! The browser client's hand-written types (web/roomcast.d.ts) cover every
//! server frame of roomcast-protocol: each `type`, each field (nested ones
//! included) and each error code. A frame or field added to the protocol
//! crate without its TypeScript fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use roomcast_protocol::{
    Change, ChangeKind, ClientLimits, ErrorCode, Member, Message, PresenceEvent, Revision, Sender,
    ServerFrame,
};
use serde_json::{Value, json};

fn sender() -> Sender {
    Sender {
        user: "u".into(),
        name: "n".into(),
    }
}

fn message() -> Message {
    Message {
        room: "r".into(),
        seq: 1,
        epoch: "e".into(),
        id: "i".into(),
        from: sender(),
        data: json!({}),
        ts: 1,
        change: Some(Box::new(Change {
            kind: ChangeKind::Edit,
            message: "m".into(),
            author: "u".into(),
            seq: 1,
            replaces: Some(1),
        })),
        revision: Some(Box::new(Revision {
            seq: 2,
            by: sender(),
            ts: 2,
            deleted: true,
        })),
    }
}

/// One frame of every variant with every optional field set. The match in
/// [`variant`] has no wildcard: a new variant does not compile until it is
/// added here.
fn every_frame() -> Vec<ServerFrame> {
    let r = Some(json!(1));
    let frames = vec![
        ServerFrame::Welcome {
            connection_id: "c".into(),
            user: sender(),
            exp: 1,
            limits: ClientLimits {
                max_data_bytes: 1,
                max_room_len: 1,
                max_id_len: 1,
                history_page_max: 1,
                rate_per_second: 1,
                rate_burst: 1,
                idle_timeout_secs: 1,
            },
            reference: r.clone(),
        },
        ServerFrame::Joined {
            room: "r".into(),
            seq: 1,
            epoch: "e".into(),
            members: Some(vec![Member {
                user: "u".into(),
                name: "n".into(),
                devices: 1,
            }]),
            member_count: Some(1),
            roster_truncated: true,
            missed: Some(vec![message()]),
            truncated: true,
            more: true,
            reference: r.clone(),
        },
        ServerFrame::Left {
            room: "r".into(),
            reference: r.clone(),
        },
        ServerFrame::Message(message()),
        ServerFrame::Ack {
            id: "i".into(),
            seq: Some(1),
            epoch: "e".into(),
            duplicate: true,
            delivered: Some(1),
            reference: r.clone(),
        },
        ServerFrame::Presence {
            room: "r".into(),
            user: "u".into(),
            name: "n".into(),
            event: PresenceEvent::Joined,
        },
        ServerFrame::Roster {
            room: "r".into(),
            member_count: 101,
            truncated: true,
        },
        ServerFrame::Typing {
            room: "r".into(),
            user: "u".into(),
            name: "n".into(),
            active: true,
        },
        ServerFrame::Direct {
            from: sender(),
            id: "i".into(),
            data: json!({}),
            ts: 1,
        },
        ServerFrame::Ephemeral {
            room: "r".into(),
            id: "i".into(),
            from: sender(),
            data: json!({}),
            ts: 1,
        },
        ServerFrame::History {
            room: "r".into(),
            messages: vec![message()],
            more: true,
            reference: r.clone(),
        },
        ServerFrame::Pong {
            ts: 1,
            reference: r.clone(),
        },
        ServerFrame::Authed {
            exp: 1,
            left: vec!["r".into()],
            reference: r.clone(),
        },
        ServerFrame::Closing {
            code: 4001,
            reason: "kicked".into(),
            reconnect: false,
        },
        ServerFrame::error(ErrorCode::Forbidden, "m", r),
    ];
    for f in &frames {
        variant(f);
    }
    frames
}

fn variant(f: &ServerFrame) -> &'static str {
    match f {
        ServerFrame::Welcome { .. } => "welcome",
        ServerFrame::Joined { .. } => "joined",
        ServerFrame::Left { .. } => "left",
        ServerFrame::Message(_) => "message",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Roster { .. } => "roster",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Direct { .. } => "direct",
        ServerFrame::Ephemeral { .. } => "ephemeral",
        ServerFrame::History { .. } => "history",
        ServerFrame::Pong { .. } => "pong",
        ServerFrame::Authed { .. } => "authed",
        ServerFrame::Closing { .. } => "closing",
        ServerFrame::Error { .. } => "error",
    }
}

fn dts() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/web/roomcast.d.ts");
    std::fs::read_to_string(path).expect("web/roomcast.d.ts")
}

/// The `{ … }` body of the wire-frame interface (`…Frame`) that declares
/// `type: '<kind>'`.
fn interface_for<'a>(dts: &'a str, kind: &str) -> Option<&'a str> {
    let start = dts.find(&format!("Frame {{ type: '{kind}';"))?;
    let end = start + dts[start..].find('}')?;
    Some(&dts[start..end])
}

fn declares(body: &str, field: &str) -> bool {
    body.contains(&format!(" {field}:")) || body.contains(&format!(" {field}?:"))
}

/// Every key of every object nested in `v`, for the nested types.
fn nested_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                nested_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| nested_keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_server_frame_type_and_field_is_in_the_browser_types() {
    let dts = dts();
    let mut missing = Vec::new();
    for frame in every_frame() {
        let v = serde_json::to_value(&frame).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        assert_eq!(kind, variant(&frame), "the wire tag is the variant's name");
        let Some(body) = interface_for(&dts, &kind) else {
            missing.push(format!("no interface with type: '{kind}'"));
            continue;
        };
        for key in v.as_object().unwrap().keys() {
            if !declares(body, key) {
                missing.push(format!("{kind}.{key}"));
            }
        }
        let mut keys = Vec::new();
        for (_, inner) in v.as_object().unwrap() {
            nested_keys(inner, &mut keys);
        }
        for key in keys {
            if !dts.contains(&format!(" {key}:")) && !dts.contains(&format!(" {key}?:")) {
                missing.push(format!("{kind} → nested field {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "web/roomcast.d.ts lacks: {missing:?}");
}

#[test]
fn every_error_code_is_in_the_browser_types() {
    let dts = dts();
    let missing: Vec<&str> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !dts.contains(&format!("'{c}'")))
        .collect();
    assert!(missing.is_empty(), "ErrorCode lacks: {missing:?}");
    for c in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
    }
}
