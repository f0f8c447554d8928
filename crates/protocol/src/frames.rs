//! The client↔server wire protocol: JSON text frames.
//!
//! Client frames are objects routed by `action`; server frames are objects
//! tagged by `type`. Every client frame may carry `ref`, echoed in the reply.
//! `docs/protocol.md` is the reference, with an example of every frame.
//!
//! Parsing never panics and never guesses: a frame that is not exactly right
//! gets a [`FrameError`] with a specific [`ErrorCode`], and the `ref` when one
//! could be read, so the client can match the error to its request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::{Limits, MAX_USER_ID_LEN};

/// A client's request reference: a short string or an integer, echoed as is.
pub type Ref = Value;

/// Longest accepted `ref` string, in bytes.
pub const MAX_REF_LEN: usize = 64;

/// Every error code a client can receive. The wire form is snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON. Fix the client; do not retry as is.
    InvalidJson,
    /// Empty, binary, or not a JSON object. Fix the client.
    InvalidFrame,
    /// `action` names nothing this server does.
    UnknownAction,
    /// A field is missing or has the wrong type; the message names it.
    InvalidField,
    /// The room name breaks the charset or length rules.
    InvalidRoom,
    /// The client message id is empty, too long or has bad characters.
    InvalidId,
    /// `data` is larger than the configured limit.
    PayloadTooLarge,
    /// The token's room claims do not allow this action on this room.
    Forbidden,
    /// The action needs the connection to have joined the room first.
    NotJoined,
    /// Over the per-connection rate limit. Slow down and retry.
    RateLimited,
    /// The token has expired; the connection is closed. Reconnect with a new one.
    TokenExpired,
    /// `auth` carried a token that does not verify, or names another user.
    InvalidToken,
    /// A backend dependency failed. Retrying with the same `id` is safe.
    Unavailable,
    /// The message a change names does not exist (never sent, expired, or
    /// deleted). Do not retry.
    NotFound,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 14] = [
        Self::InvalidJson,
        Self::InvalidFrame,
        Self::UnknownAction,
        Self::InvalidField,
        Self::InvalidRoom,
        Self::InvalidId,
        Self::PayloadTooLarge,
        Self::Forbidden,
        Self::NotJoined,
        Self::RateLimited,
        Self::TokenExpired,
        Self::InvalidToken,
        Self::Unavailable,
        Self::NotFound,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidFrame => "invalid_frame",
            Self::UnknownAction => "unknown_action",
            Self::InvalidField => "invalid_field",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidId => "invalid_id",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Forbidden => "forbidden",
            Self::NotJoined => "not_joined",
            Self::RateLimited => "rate_limited",
            Self::TokenExpired => "token_expired",
            Self::InvalidToken => "invalid_token",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
        }
    }
}

/// A rejected client frame: what to send back in an `error` frame.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct FrameError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// A human-readable explanation naming the offending field.
    pub message: String,
    /// The client's `ref`, when it could be read.
    pub reference: Option<Ref>,
}

impl FrameError {
    /// A new error without a reference.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// The server frame that reports this error.
    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error {
            code: self.code,
            message: self.message.clone(),
            reference: self.reference.clone(),
        }
    }
}

/// A validated room name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Validates a room name: 1..=max bytes of `A-Z a-z 0-9 . _ - : @`.
    /// `*` and `?` are excluded because they are glob characters in claims.
    pub fn parse(raw: &str, limits: &Limits) -> Result<Self, FrameError> {
        if raw.is_empty() || raw.len() > limits.max_room_len {
            return Err(FrameError::new(
                ErrorCode::InvalidRoom,
                format!("room must be 1 to {} characters", limits.max_room_len),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| !is_room_char(*c)) {
            return Err(FrameError::new(
                ErrorCode::InvalidRoom,
                format!("room contains {bad:?}; allowed are letters, digits and . _ - : @"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_room_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')
}

/// A validated client message id (the idempotency key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Validates an id: 1..=max bytes of printable ASCII, no spaces.
    pub fn parse(raw: &str, limits: &Limits) -> Result<Self, FrameError> {
        if raw.is_empty() || raw.len() > limits.max_id_len {
            return Err(FrameError::new(
                ErrorCode::InvalidId,
                format!("id must be 1 to {} characters", limits.max_id_len),
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FrameError::new(
                ErrorCode::InvalidId,
                "id must be printable ASCII without spaces",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Answered by `welcome`.
    Hello,
    /// Join a room; `since` is the last seq seen, for resume.
    Join {
        /// The room.
        room: RoomName,
        /// Last seq the client saw, if resuming.
        since: Option<u64>,
        /// The stream epoch `since` counts in (the last `epoch` the client
        /// saw for the room). When the room's stream has started again
        /// since, `since` means nothing there: the reply replays the new
        /// stream from its start.
        epoch: Option<String>,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: RoomName,
    },
    /// Publish to a room.
    Send {
        /// The room.
        room: RoomName,
        /// Client message id, for idempotency.
        id: MessageId,
        /// The payload, any JSON value.
        data: Value,
        /// Fan-out only: no seq, no history, no idempotency (`"ephemeral":
        /// true`). For cursors, game state and other high-rate data that
        /// nobody resumes.
        ephemeral: bool,
    },
    /// Replace the data of a message in the room. A new event in the
    /// room's stream (its own seq), idempotent by `id` like a send; its own
    /// messages with `send`, anyone's with `moderate`.
    Edit {
        /// The room.
        room: RoomName,
        /// The change's own id, for idempotency.
        id: MessageId,
        /// The id of the message it changes.
        message: MessageId,
        /// The message's sender (default: the one editing).
        author: Option<String>,
        /// The seq of the version the client saw: the message's own, or
        /// of the change that made its latest version. Two edits racing
        /// are both stored; the later seq wins.
        replaces: Option<u64>,
        /// The new payload.
        data: Value,
    },
    /// Delete a message: its data is erased from storage, a tombstone
    /// (who, when) stays. A new event in the stream like an edit.
    Delete {
        /// The room.
        room: RoomName,
        /// The change's own id, for idempotency.
        id: MessageId,
        /// The id of the message it deletes.
        message: MessageId,
        /// The message's sender (default: the one deleting).
        author: Option<String>,
    },
    /// Ephemeral typing indicator; never stored.
    Typing {
        /// The room.
        room: RoomName,
        /// Typing started (true) or stopped (false).
        active: bool,
    },
    /// A message to every connection of one user.
    Direct {
        /// The recipient's user id.
        to: String,
        /// Client message id, for idempotency.
        id: MessageId,
        /// The payload.
        data: Value,
    },
    /// A page of history, newest first.
    History {
        /// The room.
        room: RoomName,
        /// Only messages with a seq below this.
        before: Option<u64>,
        /// Page size; capped by the configured maximum.
        limit: Option<u32>,
    },
    /// Keep-alive; answered by `pong`.
    Heartbeat,
    /// Refresh the token on a live connection.
    Auth {
        /// The new JWT.
        token: String,
    },
}

impl Action {
    /// The wire name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Send { .. } => "send",
            Self::Edit { .. } => "edit",
            Self::Delete { .. } => "delete",
            Self::Typing { .. } => "typing",
            Self::Direct { .. } => "direct",
            Self::History { .. } => "history",
            Self::Heartbeat => "heartbeat",
            Self::Auth { .. } => "auth",
        }
    }
}

/// A parsed, validated client frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientFrame {
    /// The client's reference, echoed in the reply.
    pub reference: Option<Ref>,
    /// What the client asks for.
    pub action: Action,
}

/// Parses and validates one client frame. `None` is an empty body.
pub fn parse_client_frame(body: Option<&str>, limits: &Limits) -> Result<ClientFrame, FrameError> {
    let body = body.unwrap_or_default();
    if body.trim().is_empty() {
        return Err(FrameError::new(ErrorCode::InvalidFrame, "empty frame"));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| FrameError {
        code: ErrorCode::InvalidJson,
        message: format!("frame is not valid JSON: {e}"),
        // serde gave up (nesting past its limit, a number like 1e400, a
        // syntax error late in the frame): the `ref` may still be readable.
        reference: crate::top_level(body)
            .get("ref")
            .and_then(|r| valid_ref(r.clone())),
    })?;
    let Value::Object(mut obj) = value else {
        return Err(FrameError::new(
            ErrorCode::InvalidFrame,
            "frame must be a JSON object",
        ));
    };
    // Read `ref` first, so every later error can carry it.
    let reference = match obj.remove("ref") {
        None | Some(Value::Null) => None,
        Some(r) => Some(valid_ref(r).ok_or_else(|| {
            FrameError::new(
                ErrorCode::InvalidField,
                format!("ref must be an integer or a string of at most {MAX_REF_LEN} characters"),
            )
        })?),
    };
    parse_action(&mut obj, limits)
        .map(|action| ClientFrame {
            reference: reference.clone(),
            action,
        })
        .map_err(|mut e| {
            e.reference = reference;
            e
        })
}

/// `r` if it is a `ref` the server echoes: an integer or a short string.
fn valid_ref(r: Value) -> Option<Ref> {
    match r {
        Value::String(s) if s.len() <= MAX_REF_LEN => Some(Value::String(s)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        _ => None,
    }
}

/// Checks a `data` payload against the size limit and the depth limit
/// ([`crate::MAX_DATA_DEPTH`]): deeper data would be accepted
/// here but break parsers when it is sent again inside `joined` or `history`.
pub fn check_data(data: &Value, limits: &Limits) -> Result<(), FrameError> {
    let size = serde_json::to_string(data)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > limits.max_data_bytes {
        return Err(FrameError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "data is {size} bytes; the limit is {}",
                limits.max_data_bytes
            ),
        ));
    }
    let depth = crate::nesting_depth(data);
    if depth > crate::MAX_DATA_DEPTH {
        return Err(FrameError::new(
            ErrorCode::InvalidField,
            format!(
                "data nests {depth} levels deep; the limit is {}",
                crate::MAX_DATA_DEPTH
            ),
        ));
    }
    Ok(())
}

fn parse_action(obj: &mut Map<String, Value>, limits: &Limits) -> Result<Action, FrameError> {
    let action = match obj.get("action") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(field_error("action", "a string")),
        None => return Err(field_error("action", "present")),
    };
    let f = Fields { obj, limits };
    Ok(match action.as_str() {
        "hello" => Action::Hello,
        "heartbeat" => Action::Heartbeat,
        "join" => Action::Join {
            room: f.room()?,
            since: f.opt_u64("since")?,
            epoch: f.opt_epoch()?,
        },
        "leave" => Action::Leave { room: f.room()? },
        "send" => Action::Send {
            room: f.room()?,
            id: f.id()?,
            data: f.data()?,
            ephemeral: f.opt_bool("ephemeral")?.unwrap_or(false),
        },
        "edit" => Action::Edit {
            room: f.room()?,
            id: f.id()?,
            message: f.message()?,
            author: f.opt_user("author")?,
            replaces: f.opt_u64("replaces")?,
            data: f.data()?,
        },
        "delete" => Action::Delete {
            room: f.room()?,
            id: f.id()?,
            message: f.message()?,
            author: f.opt_user("author")?,
        },
        "typing" => Action::Typing {
            room: f.room()?,
            active: f.bool("active")?,
        },
        "direct" => Action::Direct {
            to: f.user("to")?,
            id: f.id()?,
            data: f.data()?,
        },
        "history" => Action::History {
            room: f.room()?,
            before: f.opt_u64("before")?,
            limit: f.limit()?,
        },
        "auth" => {
            let token = f.string("token")?;
            if token.is_empty() || token.len() > limits.max_token_len {
                return Err(FrameError::new(
                    ErrorCode::InvalidField,
                    format!("token must be 1 to {} characters", limits.max_token_len),
                ));
            }
            Action::Auth { token }
        }
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(FrameError::new(
                ErrorCode::UnknownAction,
                format!(
                    "unknown action {shown:?}; expected one of hello, join, leave, send, edit, delete, typing, direct, history, heartbeat, auth"
                ),
            ));
        }
    })
}

/// A history page's size as asked (`None`: `history_page_default`): 1 to
/// `history_page_max`. The one check of it, for clients' `history` frames
/// and the server API's `history` alike.
pub fn history_page_size(asked: Option<u64>, limits: &Limits) -> Result<u32, FrameError> {
    let max = limits.history_page_max;
    let asked = asked.unwrap_or(u64::from(limits.history_page_default));
    match u32::try_from(asked) {
        Ok(l) if (1..=max).contains(&l) => Ok(l),
        _ => Err(field_error("limit", &format!("between 1 and {max}"))),
    }
}

fn field_error(name: &str, expected: &str) -> FrameError {
    FrameError::new(
        ErrorCode::InvalidField,
        format!("{name} must be {expected}"),
    )
}

/// Typed access to the fields of one frame object.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    limits: &'a Limits,
}

impl Fields<'_> {
    fn string(&self, name: &str) -> Result<String, FrameError> {
        match self.obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(field_error(name, "a string")),
            None => Err(field_error(name, "present")),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, FrameError> {
        match self.obj.get(name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(field_error(name, "true or false")),
            None => Err(field_error(name, "present")),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, FrameError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(field_error(name, "true or false")),
        }
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, FrameError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| field_error(name, "a non-negative integer")),
        }
    }

    /// An epoch the server sent; an empty one is the same as none (a room
    /// whose stream has not started has no epoch).
    fn opt_epoch(&self) -> Result<Option<String>, FrameError> {
        match self.obj.get("epoch") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(e)) if e.is_empty() => Ok(None),
            Some(Value::String(e)) if crate::limits::valid_epoch(e) => Ok(Some(e.clone())),
            Some(_) => Err(field_error(
                "epoch",
                &format!(
                    "an epoch as the server sent it: up to {} letters, digits, - or _",
                    crate::limits::MAX_EPOCH_LEN
                ),
            )),
        }
    }

    fn room(&self) -> Result<RoomName, FrameError> {
        RoomName::parse(&self.string("room")?, self.limits)
    }

    fn id(&self) -> Result<MessageId, FrameError> {
        MessageId::parse(&self.string("id")?, self.limits)
    }

    /// The id of the message a change names (`message`).
    fn message(&self) -> Result<MessageId, FrameError> {
        MessageId::parse(&self.string("message")?, self.limits).map_err(|mut e| {
            e.message = format!("message: {}", e.message);
            e
        })
    }

    fn opt_user(&self, name: &str) -> Result<Option<String>, FrameError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.user(name).map(Some),
        }
    }

    fn user(&self, name: &str) -> Result<String, FrameError> {
        let user = self.string(name)?;
        if !crate::limits::valid_user_id(&user) {
            return Err(field_error(
                name,
                &format!(
                    "a user id of 1 to {} bytes, without control characters or surrounding whitespace",
                    MAX_USER_ID_LEN
                ),
            ));
        }
        Ok(user)
    }

    fn data(&self) -> Result<Value, FrameError> {
        let data = self
            .obj
            .get("data")
            .ok_or_else(|| field_error("data", "present"))?;
        check_data(data, self.limits)?;
        Ok(data.clone())
    }

    fn limit(&self) -> Result<Option<u32>, FrameError> {
        match self.opt_u64("limit")? {
            Some(limit) => history_page_size(Some(limit), self.limits).map(Some),
            None => Ok(None),
        }
    }
}

/// Who sent a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The user id (the token's `sub`).
    pub user: String,
    /// The display name (the token's `name`, else the user id).
    pub name: String,
}

/// A room message as delivered, stored and replayed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The room.
    pub room: String,
    /// The room's sequence number: strictly increasing, one per message.
    pub seq: u64,
    /// The room's stream epoch: the same for every seq of one stream, and
    /// new when the stream starts again at seq 1 (a store that lost the
    /// room, a restored table). Empty on messages stored before epochs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The sender's client message id.
    pub id: String,
    /// The sender.
    pub from: Sender,
    /// The payload.
    pub data: Value,
    /// Server time of acceptance, ms since the epoch.
    pub ts: i64,
    /// On a change (an edit or a delete): the message it changes. `data`
    /// is then the new payload (an edit) or null (a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<Change>>,
    /// On a message that was changed, as history and resume return it:
    /// its latest change. `data` is then the latest version (null once
    /// deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Box<Revision>>,
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New data for the message.
    Edit,
    /// The message's data erased; a tombstone stays.
    Delete,
}

/// The message a change event changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// An edit or a delete.
    pub kind: ChangeKind,
    /// The changed message's id.
    pub message: String,
    /// Its sender's user id.
    pub author: String,
    /// Its seq.
    pub seq: u64,
    /// The seq of the version the change replaced, as its client saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<u64>,
}

/// A changed message's latest change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The seq of the change event that made this version.
    pub seq: u64,
    /// Who changed it.
    pub by: Sender,
    /// When, ms since the epoch.
    pub ts: i64,
    /// Deleted: `data` is gone for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// One user present in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user id.
    pub user: String,
    /// The display name.
    pub name: String,
    /// How many of the user's connections are in the room.
    pub devices: u32,
}

/// Presence transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceEvent {
    /// The user's first device joined.
    Joined,
    /// The user's last device left.
    Left,
}

/// Limits the client should respect, sent in `welcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientLimits {
    /// Largest `data`, in bytes.
    pub max_data_bytes: usize,
    /// Longest room name.
    pub max_room_len: usize,
    /// Longest message id.
    pub max_id_len: usize,
    /// Largest history page.
    pub history_page_max: u32,
    /// Sustained messages per second.
    pub rate_per_second: u32,
    /// Burst above the sustained rate.
    pub rate_burst: u32,
    /// Idle timeout in seconds: send a heartbeat well within it.
    pub idle_timeout_secs: u64,
}

/// Frames the server sends, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    /// Reply to `hello`.
    #[serde(rename_all = "camelCase")]
    Welcome {
        /// This connection's id.
        connection_id: String,
        /// The authenticated user.
        user: Sender,
        /// Token expiry, seconds since the epoch.
        exp: i64,
        /// Limits to respect.
        limits: ClientLimits,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Reply to `join`.
    Joined {
        /// The room.
        room: String,
        /// The room's current seq.
        seq: u64,
        /// The room's stream epoch (empty while the room has no stream).
        /// A client that knew another drops what it kept for the room:
        /// the stream started again, and `missed` replays it from its
        /// start.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        epoch: String,
        /// Present users; absent without the `presence` right. At most
        /// the server's presence cap of connections.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<Vec<Member>>,
        /// How many member connections the room has (with `members`);
        /// approximate in very large rooms.
        #[serde(
            rename = "memberCount",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        member_count: Option<u64>,
        /// `members` stops at the presence cap: the room has more. Rooms past
        /// the cap send no presence or typing events either.
        #[serde(
            rename = "rosterTruncated",
            default,
            skip_serializing_if = "std::ops::Not::not"
        )]
        roster_truncated: bool,
        /// Messages after `since`, oldest first; present when `since` was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed: Option<Vec<Message>>,
        /// Some messages after `since` are beyond retention and lost.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        /// More missed messages remain: join again with the last seq received.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Reply to `leave`.
    Left {
        /// The room.
        room: String,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// A room message.
    Message(Message),
    /// Reply to `send` and `direct`.
    Ack {
        /// The client message id.
        id: String,
        /// The room seq (absent for `direct`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// The room's stream epoch `seq` counts in (a new send's; absent
        /// for a duplicate, `direct` and ephemeral sends): the sender's
        /// own message takes its place in the stream by it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        epoch: String,
        /// This id was seen before; the original seq is returned and nothing
        /// was delivered again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
        /// For `direct`: how many of the recipient's connections took it
        /// (0 when the user is offline; direct messages are not stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivered: Option<usize>,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// A user's presence changed in a room.
    Presence {
        /// The room.
        room: String,
        /// The user id.
        user: String,
        /// The display name.
        name: String,
        /// What happened.
        event: PresenceEvent,
    },
    /// The room just outgrew the presence cap: from here on it sends no
    /// presence or typing events, so a roster the client holds is partial
    /// (as a `joined` with `rosterTruncated` says to later joiners). Sent
    /// once per crossing, to the presence watchers; a client that wants a
    /// complete roster again re-joins once the room is back within the cap.
    Roster {
        /// The room.
        room: String,
        /// How many member connections the room has; approximate in very
        /// large rooms.
        #[serde(rename = "memberCount")]
        member_count: u64,
        /// Always true: the roster is no longer complete.
        truncated: bool,
    },
    /// A user started or stopped typing.
    Typing {
        /// The room.
        room: String,
        /// The user id.
        user: String,
        /// The display name.
        name: String,
        /// Whether they are typing.
        active: bool,
    },
    /// An ephemeral room message: no seq, not stored, never resumed. Best
    /// effort: a member who is away misses it, and it keeps no order with
    /// other frames.
    Ephemeral {
        /// The room.
        room: String,
        /// The sender's message id.
        id: String,
        /// The sender.
        from: Sender,
        /// The payload.
        data: Value,
        /// Server time, ms since the epoch.
        ts: i64,
    },
    /// A direct message.
    Direct {
        /// The sender.
        from: Sender,
        /// The sender's message id.
        id: String,
        /// The payload.
        data: Value,
        /// Server time, ms since the epoch.
        ts: i64,
    },
    /// Reply to `history`: newest first.
    History {
        /// The room.
        room: String,
        /// The page, newest first.
        messages: Vec<Message>,
        /// Older messages exist: ask again with `before` = the last seq here.
        more: bool,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Reply to `heartbeat`.
    Pong {
        /// Server time, ms since the epoch.
        ts: i64,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Reply to `auth`.
    Authed {
        /// The new token's expiry, seconds since the epoch.
        exp: i64,
        /// Rooms this connection was in that the new token does not grant:
        /// it has left them and gets nothing more from them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left: Vec<String>,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// The server is closing this connection on a backend's request (the
    /// server API's `disconnect` or `revoke`); the socket closes right
    /// after. With `reconnect: false` the client must not reconnect on its
    /// own (it was kicked or revoked); with `true` it may, as after any drop.
    Closing {
        /// The backend's code (4000–4999 by convention, as WebSocket
        /// private-use close codes).
        code: u16,
        /// The backend's reason, for the user.
        reason: String,
        /// Whether reconnecting may succeed.
        reconnect: bool,
    },
    /// Something was wrong.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Details for humans.
        message: String,
        /// Echoed reference.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, reference: Option<Ref>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            reference,
        }
    }

    /// The JSON text of this frame.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and
        // every value is plain data. Fall back to a fixed error frame anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"unavailable","message":"could not encode reply"}"#.into()
        })
    }
}

#[cfg(test)]
mod tests;
