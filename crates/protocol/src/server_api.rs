//! The server API's wire format, once: what a team's backend sends the
//! publish function over Lambda Invoke (`ServerRequest`, told apart by
//! `op`) and what each operation answers. The function reads requests and
//! writes answers with these types; the Rust client (`roomcast-server-api`)
//! writes requests and reads answers with the same ones. docs/server-api.md
//! documents each operation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::frames::{Member, Message, Sender};

/// Every operation's name, as `op` spells it.
pub const OPERATIONS: [&str; 8] = [
    "publish",
    "roomInfo",
    "members",
    "history",
    "disconnect",
    "revoke",
    "edit",
    "delete",
];

/// The most members one page may ask for.
pub const MEMBERS_PAGE_MAX: usize = 1000;
/// Members per page when the caller does not say.
pub const MEMBERS_PAGE_DEFAULT: usize = 100;

/// One server API request. A request without `op` is a publish (the
/// function reads it so), as before the other operations existed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum ServerRequest {
    /// Publish to a room or a user (see [`PublishRequest`]).
    Publish(PublishRequest),
    /// Member count, present users, current seq.
    RoomInfo {
        /// The room.
        room: String,
    },
    /// A page of a room's member connections.
    Members {
        /// The room.
        room: String,
        /// From the previous page's `cursor`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// 1 to [`MEMBERS_PAGE_MAX`]; default [`MEMBERS_PAGE_DEFAULT`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// A page of a room's history, newest first.
    History {
        /// The room.
        room: String,
        /// Only messages with a lower seq.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Up to the history page maximum (`Limits::history_page_max`);
        /// default as for clients.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Close a user's connections, telling them why.
    Disconnect {
        /// The user (the token's `sub`).
        user: String,
        /// 4000–4999; default 4000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        /// For the user; default "disconnected by the server".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Whether the clients may reconnect on their own; default false.
        #[serde(default)]
        reconnect: bool,
    },
    /// Edit any message of a room, as a moderator (docs/protocol.md,
    /// "Messages that change"): a new event in the room's stream.
    Edit {
        /// The room.
        room: String,
        /// The change's own id: a retry with the same id is not applied
        /// twice.
        id: String,
        /// The id of the message it changes.
        message: String,
        /// The message's sender.
        author: String,
        /// The new payload.
        data: Value,
        /// The seq of the version the backend replaces, if it knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<u64>,
        /// Shown as the one who changed it; default
        /// `{"user":"server","name":"server"}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Sender>,
    },
    /// Delete any message of a room, as a moderator: its data is erased, a
    /// tombstone stays.
    Delete {
        /// The room.
        room: String,
        /// The change's own id.
        id: String,
        /// The id of the message it deletes.
        message: String,
        /// The message's sender.
        author: String,
        /// Shown as the one who deleted it; default the server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Sender>,
    },
    /// Close a user's connections and refuse their connects and frames
    /// until `until`.
    Revoke {
        /// The user.
        user: String,
        /// Seconds since the epoch (a token's `exp` is a good choice).
        until: i64,
        /// 4000–4999; default 4000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        /// For the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// A publish: exactly one of `room` and `user`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Publish to this room (stored in history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Or to every connection of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The payload.
    pub data: Value,
    /// Idempotency key for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Shown as the sender; defaults to `{"user":"server","name":"server"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
}

/// What a publish did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The room seq (room publishes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The id was used before; nothing was delivered again.
    pub duplicate: bool,
    /// Connections that accepted it inline.
    pub delivered: usize,
    /// Connections found gone (and removed).
    pub gone: usize,
    /// Posts that failed otherwise (timeouts, throttling, outages).
    pub failed: usize,
    /// Connections handed to the `fanout` function (a large room): they
    /// are delivered by shards, after this report.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queued: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `roomInfo`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The room.
    pub room: String,
    /// Member connections (approximate: a lost `$disconnect` is counted
    /// until its connection is cleaned up).
    pub member_count: u64,
    /// Users present, with their device counts: at most `PresenceMax`.
    pub present: Vec<Member>,
    /// More are present than listed.
    pub present_truncated: bool,
    /// The room's current seq (what a joiner would be told).
    pub seq: u64,
}

/// One member connection, as `members` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry {
    /// The connection.
    pub connection_id: String,
    /// Its user.
    pub user: String,
    /// Their display name.
    pub name: String,
    /// When it joined (ms since the epoch).
    pub joined_at: i64,
}

/// `members`' answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersPage {
    /// This page, in connection-id order.
    pub members: Vec<MemberEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `history`'s answer: the page a client's `history` gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Older messages exist: ask again with `before` = the last seq here.
    pub more: bool,
}

/// What `disconnect` and `revoke` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    /// Connections closed.
    pub disconnected: usize,
    /// For `revoke`: refused until then (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What the client writes, the function reads back unchanged.
    #[test]
    fn every_request_round_trips() {
        let requests = [
            ServerRequest::Publish(PublishRequest {
                room: Some("r".into()),
                user: None,
                data: json!({"t": 1}),
                id: Some("p1".into()),
                from: None,
            }),
            ServerRequest::RoomInfo { room: "r".into() },
            ServerRequest::Members {
                room: "r".into(),
                cursor: Some("c".into()),
                limit: Some(5),
            },
            ServerRequest::History {
                room: "r".into(),
                before: None,
                limit: Some(10),
            },
            ServerRequest::Disconnect {
                user: "u".into(),
                code: Some(4001),
                reason: None,
                reconnect: true,
            },
            ServerRequest::Revoke {
                user: "u".into(),
                until: 9,
                code: None,
                reason: Some("bye".into()),
            },
            ServerRequest::Edit {
                room: "r".into(),
                id: "c1".into(),
                message: "m1".into(),
                author: "u".into(),
                data: json!("fixed"),
                replaces: Some(3),
                from: None,
            },
            ServerRequest::Delete {
                room: "r".into(),
                id: "c2".into(),
                message: "m1".into(),
                author: "u".into(),
                from: None,
            },
        ];
        for request in requests {
            let wire = serde_json::to_value(&request).unwrap();
            assert!(OPERATIONS.contains(&wire["op"].as_str().unwrap()), "{wire}");
            let back: ServerRequest = serde_json::from_value(wire).unwrap();
            assert_eq!(back, request);
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_answers_read_what_the_function_writes() {
        let bad = json!({"op": "roomInfo", "room": "r", "extra": 1});
        assert!(serde_json::from_value::<ServerRequest>(bad).is_err());
        let page: MembersPage = serde_json::from_value(json!({"members": []})).unwrap();
        assert_eq!(page.cursor, None);
        let published: Published = serde_json::from_value(
            json!({"seq": 3, "duplicate": false, "delivered": 2, "gone": 0, "failed": 0}),
        )
        .unwrap();
        assert_eq!(published.queued, 0);
    }
}
