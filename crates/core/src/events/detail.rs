//! Each event's `detail`: camelCase JSON (`version` is added in front by
//! [`super::Event::detail`]), times in ms
//! since the epoch. docs/events.md is the reference; a test there keeps the
//! two in step.

use serde::Serialize;
use serde_json::Value;

use crate::clock::Millis;
use crate::protocol::Sender;

/// `Connection Opened`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOpened {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The token's `sub`.
    pub user: String,
    /// The display name.
    pub name: String,
    /// When (ms since the epoch).
    pub at: Millis,
}

/// `Connection Closed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionClosed {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The token's `sub`.
    pub user: String,
    /// The WebSocket close code, where known (API Gateway's
    /// `disconnectStatusCode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<i64>,
    /// Why, where known: API Gateway's `disconnectReason`, or `gone` when a
    /// post found the connection already closed (its `$disconnect` lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rooms it was in.
    pub rooms: Vec<String>,
    /// When it connected.
    pub connected_at: Millis,
    /// When its state was removed.
    pub at: Millis,
}

/// `Room Joined`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomJoined {
    /// The room.
    pub room: String,
    /// The connection that joined.
    pub connection_id: String,
    /// Its user.
    pub user: String,
    /// When.
    pub at: Millis,
}

/// Why a connection left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RoomLeftReason {
    /// The client sent `leave`.
    Leave,
    /// The connection closed (or was found gone).
    Disconnect,
    /// A refreshed token no longer grants the room.
    Rights,
}

/// `Room Left`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomLeft {
    /// The room.
    pub room: String,
    /// The connection that left.
    pub connection_id: String,
    /// Its user.
    pub user: String,
    /// Why.
    pub reason: RoomLeftReason,
    /// When.
    pub at: Millis,
}

/// Arrived or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PresenceChange {
    /// The user's first device arrived.
    Joined,
    /// The user's last device left.
    Left,
}

/// `Presence Changed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChanged {
    /// The room.
    pub room: String,
    /// The user.
    pub user: String,
    /// Their display name.
    pub name: String,
    /// What changed.
    pub event: PresenceChange,
    /// When.
    pub at: Millis,
}

/// Why an event has no `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DataOmitted {
    /// The stack leaves data out of events (`EventsIncludeData=false`).
    Configured,
    /// The entry would have been over EventBridge's 256 KB.
    TooLarge,
}

/// Who stored a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// A client's `send`.
    Client,
    /// A backend's publish.
    Server,
}

/// `Message Stored`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStored {
    /// The room.
    pub room: String,
    /// Its seq in the room.
    pub seq: u64,
    /// The room's stream epoch: (room, epoch, seq) names the message even
    /// across a stream that started again.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The sender's id for it (idempotency key).
    pub id: String,
    /// The sender.
    pub from: Sender,
    /// A client or a backend.
    pub origin: Origin,
    /// The sending connection (client sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The payload, unless left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why `data` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_omitted: Option<DataOmitted>,
    /// The message's timestamp.
    pub ts: Millis,
}

/// `Message Updated` and `Message Deleted`: a change stored in the room's
/// stream, naming the message it changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageChanged {
    /// The room.
    pub room: String,
    /// The change's seq in the room.
    pub seq: u64,
    /// The room's stream epoch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The change's own id.
    pub id: String,
    /// An edit or a delete.
    #[serde(skip)]
    pub kind: crate::protocol::ChangeKind,
    /// The changed message's id, sender and seq.
    pub message: String,
    /// Its sender.
    pub author: String,
    /// Its seq.
    pub message_seq: u64,
    /// Who changed it.
    pub from: Sender,
    /// A client or a backend.
    pub origin: Origin,
    /// The changing connection (client changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// An edit's new payload, unless left out (a delete has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why `data` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_omitted: Option<DataOmitted>,
    /// The change's timestamp.
    pub ts: Millis,
}

/// `Direct Sent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectSent {
    /// The recipient user.
    pub to: String,
    /// The sender.
    pub from: Sender,
    /// The sender's id for it.
    pub id: String,
    /// The sending connection.
    pub connection_id: String,
    /// Connections of `to` that accepted it (0: offline).
    pub delivered: usize,
    /// The payload, unless left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why `data` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_omitted: Option<DataOmitted>,
    /// When.
    pub ts: Millis,
}

/// `Message Published`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePublished {
    /// The room, for a room publish (which is also `Message Stored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The user, for a user publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The seq (room publishes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The publish's id.
    pub id: String,
    /// Shown as the sender.
    pub from: Sender,
    /// Connections that accepted it (those queued to shards not counted).
    pub delivered: usize,
    /// The payload, unless left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why `data` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_omitted: Option<DataOmitted>,
    /// When.
    pub at: Millis,
}

/// `Request Rejected`: refusals worth alerting on (`forbidden`,
/// `rate_limited`, `invalid_token`, `token_expired`), not every bad frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// The error code the client got.
    pub code: String,
    /// The message it got.
    pub reason: String,
    /// The frame's action (`send`, `join`, …), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The connection, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The user, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When.
    pub at: Millis,
}
