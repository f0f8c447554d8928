//! The server API: what a team's backend asks of Roomcast beside
//! `publish` (over Lambda Invoke with IAM, so the caller is trusted and no
//! token rights apply). Each operation validates its arguments first and
//! answers with plain data; nothing here ever panics on a bad request.

use super::rooms::{group_by_user, roster};
use super::{Closed, Context};
use crate::clock::Millis;
use crate::protocol::{ErrorCode, FrameError, RoomName, ServerFrame};
use crate::store::StoreError;

pub use crate::protocol::server_api::{
    Disconnected, HistoryPage, MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX, MemberEntry, MembersPage,
    RoomInfo,
};

/// Why a server operation failed. Each variant says what the caller does.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is malformed (the message names the field): fix the
    /// caller; retrying it unchanged fails the same way.
    #[error("invalid request: {0}")]
    Invalid(#[from] FrameError),
    /// The store failed: retry (every operation is safe to repeat).
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<super::RouteError> for ServerError {
    fn from(e: super::RouteError) -> Self {
        match e {
            super::RouteError::Rejected(f) => Self::Invalid(f),
            super::RouteError::Store(s) => Self::Store(s),
        }
    }
}

fn invalid(message: impl Into<String>) -> ServerError {
    ServerError::Invalid(FrameError::new(ErrorCode::InvalidField, message))
}

/// `roomInfo`: member count, who is present, current seq. An unknown room
/// is an empty one. O(PresenceMax) reads, never O(members).
pub async fn room_info(ctx: &Context<'_>, room: &str) -> Result<RoomInfo, ServerError> {
    let room = RoomName::parse(room, &ctx.config.limits)?;
    let now = ctx.now();
    let member_count = ctx.store.member_count(room.as_str(), now).await?;
    let (members, truncated) = roster(ctx, &room, ctx.config.presence_max, now).await?;
    // What a joiner would be told: settled as a join settles it.
    let seq = crate::store::sequencer::settle(ctx.store, room.as_str(), now, ctx.settle_options())
        .await?
        .seq;
    Ok(RoomInfo {
        room: room.to_string(),
        member_count,
        present: group_by_user(&members),
        present_truncated: truncated,
        seq,
    })
}

/// `members`: one page of a room's member connections. O(limit).
pub async fn members(
    ctx: &Context<'_>,
    room: &str,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<MembersPage, ServerError> {
    let room = RoomName::parse(room, &ctx.config.limits)?;
    let limit = limit.unwrap_or(MEMBERS_PAGE_DEFAULT);
    if !(1..=MEMBERS_PAGE_MAX).contains(&limit) {
        return Err(invalid(format!("limit must be 1 to {MEMBERS_PAGE_MAX}")));
    }
    let page = ctx
        .store
        .members_page(room.as_str(), cursor, limit, ctx.now())
        .await?;
    Ok(MembersPage {
        members: page
            .members
            .into_iter()
            .map(|m| MemberEntry {
                connection_id: m.connection_id,
                user: m.user,
                name: m.name,
                joined_at: m.joined_at,
            })
            .collect(),
        cursor: page.next,
    })
}

/// `history`: a page of a room's messages older than `before`. An unknown
/// room has none.
pub async fn history(
    ctx: &Context<'_>,
    room: &str,
    before: Option<u64>,
    limit: Option<u32>,
) -> Result<HistoryPage, ServerError> {
    let limits = &ctx.config.limits;
    let room = RoomName::parse(room, limits)?;
    let limit = crate::protocol::history_page_size(limit.map(u64::from), limits)?;
    let page = ctx
        .store
        .history_before(room.as_str(), before, limit, ctx.now())
        .await?;
    Ok(HistoryPage {
        messages: page.messages,
        more: page.more,
    })
}

/// How a backend closes a user's connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kick {
    /// 4000–4999 (WebSocket's private-use close codes).
    pub code: u16,
    /// Shown to the user; at most 123 bytes (a close frame's limit).
    pub reason: String,
}

impl Kick {
    /// Checks the code and reason.
    pub fn new(code: Option<u16>, reason: Option<String>) -> Result<Self, ServerError> {
        let code = code.unwrap_or(4000);
        if !(4000..=4999).contains(&code) {
            return Err(invalid("code must be 4000 to 4999"));
        }
        let reason = reason.unwrap_or_else(|| "disconnected by the server".into());
        if reason.len() > 123 {
            return Err(invalid("reason must be at most 123 bytes"));
        }
        Ok(Self { code, reason })
    }
}

/// `disconnect`: tells each of `user`'s connections why (a `closing`
/// frame; `reconnect` says whether to come back) and closes it, as DELETE
/// `@connections` does. An unknown or offline user has none.
pub async fn disconnect_user(
    ctx: &Context<'_>,
    user: &str,
    kick: &Kick,
    reconnect: bool,
) -> Result<Disconnected, ServerError> {
    let user = checked_user(user)?;
    let ids = ctx.store.user_connections(user, ctx.now()).await?;
    for id in &ids {
        close_with(ctx, id, kick, reconnect).await;
    }
    tracing::info!(
        user,
        connections = ids.len(),
        code = kick.code,
        "user disconnected by the backend"
    );
    Ok(Disconnected {
        disconnected: ids.len(),
        until: None,
    })
}

/// `revoke`: refuses `user`'s connects and frames until `until` (ms), and
/// closes their connections now with `reconnect: false`. The revocation is
/// stored first and each connection's state removed at once, so neither a
/// connect racing the revoke nor a frame already in flight gets through.
pub async fn revoke_user(
    ctx: &Context<'_>,
    user: &str,
    until: Millis,
    kick: &Kick,
) -> Result<Disconnected, ServerError> {
    let user = checked_user(user)?;
    let now = ctx.now();
    if until <= now {
        return Err(invalid("until must be in the future (ms since the epoch)"));
    }
    ctx.store.revoke(user, until).await?;
    let ids = ctx.store.user_connections(user, now).await?;
    for id in &ids {
        if let Some(removed) = ctx.store.remove_connection(id).await? {
            let closed = Closed {
                code: Some(i64::from(kick.code)),
                reason: Some(kick.reason.clone()),
            };
            let gone = ctx.announce_removal(&removed, closed).await;
            if !gone.is_empty() {
                ctx.reap(gone).await;
            }
        }
        close_with(ctx, id, kick, false).await;
    }
    tracing::info!(
        user,
        until,
        connections = ids.len(),
        "user revoked by the backend"
    );
    Ok(Disconnected {
        disconnected: ids.len(),
        until: Some(until),
    })
}

/// The user as the backend names it, byte for byte: never trimmed or
/// folded, so `" mallory"` can never revoke or kick `mallory`. An id no
/// token could carry (the authorizer refuses it) is refused here too,
/// saying why, rather than matching nobody.
fn checked_user(user: &str) -> Result<&str, ServerError> {
    if !crate::auth::valid_user_id(user) {
        return Err(invalid(format!(
            "user must be 1 to {} bytes, without control characters or surrounding whitespace (ids are compared exactly)",
            crate::auth::MAX_USER_ID_LEN
        )));
    }
    Ok(user)
}

/// Posts the `closing` frame, then closes the socket. A connection
/// already gone is fine: there is nothing left to close.
async fn close_with(ctx: &Context<'_>, id: &str, kick: &Kick, reconnect: bool) {
    let frame = ServerFrame::Closing {
        code: kick.code,
        reason: kick.reason.clone(),
        reconnect,
    }
    .to_json();
    if let Err(e) = ctx.gateway.post(id, frame.as_bytes()).await {
        tracing::info!(connection_id = id, error = %e, "could not send the closing frame");
    }
    match ctx.gateway.delete(id).await {
        Ok(()) | Err(crate::gateway::GatewayError::Gone) => {}
        Err(e) => tracing::warn!(connection_id = id, error = %e, "could not close the connection"),
    }
}

/// `edit` and `delete` from the backend: a moderator's change of any
/// message, by its id and author (docs/protocol.md, "Messages that change").
pub async fn change_message(
    ctx: &Context<'_>,
    change: BackendChange,
) -> Result<crate::protocol::server_api::Published, ServerError> {
    let limits = &ctx.config.limits;
    let request = super::change::ChangeRequest {
        room: RoomName::parse(&change.room, limits)?,
        id: crate::protocol::MessageId::parse(&change.id, limits)?,
        message: crate::protocol::MessageId::parse(&change.message, limits)?,
        author: None,
        kind: change.kind,
        replaces: change.replaces,
        data: change.data,
    };
    if !crate::protocol::valid_user_id(&change.author) {
        return Err(invalid(
            "author must be a user id, exactly as the token's sub",
        ));
    }
    if change.kind == crate::protocol::ChangeKind::Edit {
        crate::protocol::check_data(&request.data, limits)?;
    }
    let from = change.from.unwrap_or_else(|| crate::protocol::Sender {
        user: "server".into(),
        name: "server".into(),
    });
    Ok(super::change::backend_change(ctx, request, change.author, from, ctx.now()).await?)
}

/// A change the backend asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendChange {
    /// The room.
    pub room: String,
    /// The change's own id.
    pub id: String,
    /// The message it changes, and its sender.
    pub message: String,
    /// The message's sender.
    pub author: String,
    /// An edit or a delete.
    pub kind: crate::protocol::ChangeKind,
    /// The new data (null for a delete).
    pub data: serde_json::Value,
    /// The version replaced, if known.
    pub replaces: Option<u64>,
    /// Shown as the one who changed it (default: the server).
    pub from: Option<crate::protocol::Sender>,
}

impl BackendChange {
    /// The change an `edit` or `delete` request asks for; `None` for any
    /// other operation.
    pub fn of(request: crate::protocol::server_api::ServerRequest) -> Option<Self> {
        use crate::protocol::ChangeKind;
        use crate::protocol::server_api::ServerRequest;
        Some(match request {
            ServerRequest::Edit {
                room,
                id,
                message,
                author,
                data,
                replaces,
                from,
            } => Self {
                room,
                id,
                message,
                author,
                kind: ChangeKind::Edit,
                data,
                replaces,
                from,
            },
            ServerRequest::Delete {
                room,
                id,
                message,
                author,
                from,
            } => Self {
                room,
                id,
                message,
                author,
                kind: ChangeKind::Delete,
                data: serde_json::Value::Null,
                replaces: None,
                from,
            },
            _ => return None,
        })
    }
}
