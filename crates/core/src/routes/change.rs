//! Messages that change: `edit` and `delete`. A change is a new event in
//! the room's stream, appended like a send (its own seq, idempotent by its
//! own id), so live members, a client resuming with `since` and history see
//! it in order, gap-free, exactly once. Then it is applied to the message it
//! names (`Store::apply_change`): history returns the message in its
//! latest version, or as a tombstone once deleted.

use serde_json::Value;

use super::send::{fan_out, history_ttl, keep_settled};
use super::{Context, RouteError, rooms::require};
use crate::auth::Right;
use crate::clock::Millis;
use crate::events::{self, Event, Origin};
use crate::protocol::{
    Change, ChangeKind, ErrorCode, Message, MessageId, Ref, RoomName, Sender, ServerFrame,
};
use crate::store::{Appended, ChangeApplied, ConnectionRecord, NewMessage, sequencer};

/// A change as a client asks for it.
#[derive(Debug)]
pub(crate) struct ChangeRequest {
    pub(crate) room: RoomName,
    /// The change's own id.
    pub(crate) id: MessageId,
    /// The message it changes, and its sender (default: the requester).
    pub(crate) message: MessageId,
    pub(crate) author: Option<String>,
    pub(crate) kind: ChangeKind,
    pub(crate) replaces: Option<u64>,
    /// The new data (an edit); null for a delete.
    pub(crate) data: Value,
}

/// A change appended to the stream: new, or a repeat of one stored before.
pub(super) enum Stored {
    /// Stored under a fresh seq and applied to its message.
    New {
        stored: Message,
        follows_settled: bool,
    },
    /// Its id was used before: stored then under this seq.
    Duplicate { seq: u64 },
}

/// Finds the message `request` names from `author`, appends the change as
/// `from`, and applies it. The caller has checked the rights.
pub(super) async fn store_change(
    ctx: &Context<'_>,
    request: &ChangeRequest,
    author: String,
    from: Sender,
    origin: (Origin, Option<&str>),
    now: Millis,
) -> Result<Stored, RouteError> {
    let room = &request.room;
    let target = ctx
        .store
        .find_message(room.as_str(), &author, request.message.as_str(), now)
        .await?
        .filter(|m| !m.revision.as_ref().is_some_and(|r| r.deleted))
        .ok_or_else(|| {
            RouteError::rejected(
                ErrorCode::NotFound,
                format!(
                    "no message {} from {author} in room {room} (never sent, expired or deleted)",
                    request.message.as_str()
                ),
            )
        })?;
    let expires_at = now.saturating_add(history_ttl(ctx));
    let message = NewMessage {
        room: room.to_string(),
        id: request.id.as_str().to_owned(),
        from,
        data: request.data.clone(),
        ts: now,
        expires_at,
        change: Some(Change {
            kind: request.kind,
            message: request.message.as_str().to_owned(),
            author,
            seq: target.seq,
            replaces: request.replaces,
        }),
    };
    let (mut stored, follows_settled) = match sequencer::append(
        ctx.store, ctx.clock, message, expires_at,
    )
    .await?
    {
        Appended::Duplicate { seq } => {
            tracing::info!(%room, id = request.id.as_str(), seq, "repeated change acked with the original seq");
            return Ok(Stored::Duplicate { seq });
        }
        Appended::New {
            message,
            follows_settled,
        } => (message, follows_settled),
    };
    let applied = ctx
        .store
        .apply_change(room.as_str(), target.seq, &stored)
        .await?;
    if applied == ChangeApplied::Deleted {
        // Deleted meanwhile: the edit's data is erased; members see the
        // change as stored.
        stored.data = Value::Null;
    }
    tracing::info!(%room, seq = stored.seq, target = target.seq, kind = ?request.kind, ?applied, "message changed");
    record_changed(ctx, &stored, origin);
    Ok(Stored::New {
        stored,
        follows_settled,
    })
}

/// `edit` and `delete`: its own message with `send`, anyone's with
/// `moderate`. Acks the requester at once, then fans out to every other
/// member. A repeated id is acked with the original seq and not applied
/// again.
pub(super) async fn change(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    request: ChangeRequest,
    reference: Option<Ref>,
    now: Millis,
) -> Result<Option<ServerFrame>, RouteError> {
    let room = request.room.clone();
    require(conn, &room, Right::Send)?;
    // Identities are compared exactly: never trimmed or folded.
    let author = request.author.clone().unwrap_or_else(|| conn.user.clone());
    if author != conn.user {
        require(conn, &room, Right::Moderate)?;
    }
    let ack = |seq, epoch: &str, duplicate| ServerFrame::Ack {
        id: request.id.as_str().to_owned(),
        seq: Some(seq),
        epoch: epoch.to_owned(),
        duplicate,
        delivered: None,
        reference: reference.clone(),
    };
    let (stored, follows_settled) = match store_change(
        ctx,
        &request,
        author,
        conn.sender(),
        (Origin::Client, Some(&conn.connection_id)),
        now,
    )
    .await?
    {
        Stored::Duplicate { seq } => return Ok(Some(ack(seq, "", true))),
        Stored::New {
            stored,
            follows_settled,
        } => (stored, follows_settled),
    };
    let (seq, epoch) = (stored.seq, stored.epoch.clone());
    let early = ack(seq, &epoch, false);
    let acked = ctx
        .gateway
        .post(&conn.connection_id, early.to_json().as_bytes())
        .await
        .is_ok();
    // The events go out beside the fan-out, after the ack, as a send's.
    let (delivered, ()) = futures::join!(
        fan_out(ctx, stored, Some(&conn.connection_id), now),
        ctx.events.flush()
    );
    delivered?;
    keep_settled(ctx, room.as_str(), seq, follows_settled, now).await;
    Ok((!acked).then_some(early))
}

/// A change from the backend (the server API's `edit` and `delete`): a
/// moderator's, trusted (IAM let it invoke), delivered to the whole room.
pub(super) async fn backend_change(
    ctx: &Context<'_>,
    request: ChangeRequest,
    author: String,
    from: Sender,
    now: Millis,
) -> Result<crate::protocol::server_api::Published, RouteError> {
    let room = request.room.clone();
    let (stored, follows_settled) =
        match store_change(ctx, &request, author, from, (Origin::Server, None), now).await? {
            Stored::Duplicate { seq } => {
                return Ok(crate::protocol::server_api::Published {
                    seq: Some(seq),
                    duplicate: true,
                    ..Default::default()
                });
            }
            Stored::New {
                stored,
                follows_settled,
            } => (stored, follows_settled),
        };
    let seq = stored.seq;
    let delivery = fan_out(ctx, stored, None, now).await?;
    keep_settled(ctx, room.as_str(), seq, follows_settled, now).await;
    Ok(crate::protocol::server_api::Published {
        seq: Some(seq),
        duplicate: false,
        delivered: delivery.delivered,
        gone: delivery.gone,
        failed: delivery.failed,
        queued: delivery.queued,
    })
}

/// Records `Message Updated` or `Message Deleted` for a change just stored.
fn record_changed(
    ctx: &Context<'_>,
    stored: &Message,
    (origin, connection_id): (Origin, Option<&str>),
) {
    let Some(change) = stored.change.as_deref() else {
        return;
    };
    ctx.events.record(|| {
        Event::MessageChanged(events::MessageChanged {
            room: stored.room.clone(),
            seq: stored.seq,
            epoch: stored.epoch.clone(),
            id: stored.id.clone(),
            kind: change.kind,
            message: change.message.clone(),
            author: change.author.clone(),
            message_seq: change.seq,
            from: stored.from.clone(),
            origin,
            connection_id: connection_id.map(str::to_owned),
            data: (change.kind == ChangeKind::Edit).then(|| stored.data.clone()),
            data_omitted: None,
            ts: stored.ts,
        })
    });
}
