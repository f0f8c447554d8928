//! Publishing: `send` to a room, `direct` to a user, and the backend
//! `publish` used by the publish function.

use serde_json::Value;

use super::{Context, Delivery, RouteError, rooms::require};
use crate::auth::Right;
use crate::clock::Millis;
use crate::events::{self, Event, Origin};
use crate::protocol::{
    ErrorCode, FrameError, Message, MessageId, Ref, RoomName, Sender, ServerFrame,
};
use crate::store::{Appended, ConnectionRecord, NewMessage, StoreError, sequencer};

/// `send`: appends under the room's next seq, acks the sender at once
/// (through the gateway, so the ack never waits for the fan-out), then
/// fans out to every other member connection. A repeated id (a retry after
/// a reconnect) is acked with the original seq and not delivered again.
/// Returns the reply only when the ack could not be posted early.
pub(super) async fn send(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    id: MessageId,
    data: Value,
    reference: Option<Ref>,
    now: Millis,
) -> Result<Option<ServerFrame>, RouteError> {
    require(conn, room, Right::Send)?;
    let ack = |seq, epoch: &str, duplicate| ServerFrame::Ack {
        id: id.as_str().to_owned(),
        seq: Some(seq),
        epoch: epoch.to_owned(),
        duplicate,
        delivered: None,
        reference: reference.clone(),
    };
    let sender = Some(&*conn.connection_id);
    let message = new_message(ctx, room, id.as_str(), conn.sender(), data, now);
    let marker_expires_at = message.expires_at;
    let (stored, follows_settled) = match sequencer::append(
        ctx.store,
        ctx.clock,
        message,
        marker_expires_at,
    )
    .await?
    {
        Appended::Duplicate { seq } => {
            tracing::info!(%room, id = id.as_str(), seq, "duplicate send acked with the original seq");
            return Ok(Some(ack(seq, "", true)));
        }
        Appended::New {
            message,
            follows_settled,
        } => (message, follows_settled),
    };
    let seq = stored.seq;
    let early = ack(seq, &stored.epoch, false);
    let acked = match ctx
        .gateway
        .post(&conn.connection_id, early.to_json().as_bytes())
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(connection_id = %conn.connection_id, %room, seq, error = %e, "early ack not posted; it goes with the reply");
            false
        }
    };
    record_stored(ctx, &stored, Origin::Client, Some(&conn.connection_id));
    // The events go out beside the fan-out, after the ack: a slow bus
    // delays neither.
    let (delivered, ()) = futures::join!(fan_out(ctx, stored, sender, now), ctx.events.flush());
    delivered?;
    keep_settled(ctx, room.as_str(), seq, follows_settled, now).await;
    Ok((!acked).then_some(early))
}

/// Records `Message Stored` for a message just appended.
fn record_stored(ctx: &Context<'_>, stored: &Message, origin: Origin, connection_id: Option<&str>) {
    ctx.events.record(|| {
        Event::MessageStored(events::MessageStored {
            room: stored.room.clone(),
            seq: stored.seq,
            epoch: stored.epoch.clone(),
            id: stored.id.clone(),
            from: stored.from.clone(),
            origin,
            connection_id: connection_id.map(str::to_owned),
            data: Some(stored.data.clone()),
            data_omitted: None,
            ts: stored.ts,
        })
    });
}

/// Keeps the room's settled watermark close behind its counter, after the
/// ack, so that readers' settles stay short and history never expires
/// unsettled: a send that followed a settled seq raises it to its own (one
/// write, no read); otherwise every [`SETTLE_EVERY`](sequencer::SETTLE_EVERY)
/// seqs the writer settles the room. A failure leaves it to the next send.
pub(super) async fn keep_settled(
    ctx: &Context<'_>,
    room: &str,
    seq: u64,
    follows_settled: bool,
    now: Millis,
) {
    let result = if follows_settled {
        ctx.store.advance_settled(room, seq).await
    } else if seq.is_multiple_of(sequencer::SETTLE_EVERY) {
        sequencer::settle(ctx.store, room, now, ctx.settle_options())
            .await
            .map(|_| ())
    } else {
        return;
    };
    if let Err(e) = result {
        tracing::warn!(%room, seq, error = %e, "could not raise the room's settled seq");
    }
}

/// `send` with `ephemeral: true`: fan-out only. No seq, no history, no
/// idempotency marker, so it never touches the room's sequencer; the ack
/// carries no seq. Rate limited like any frame (before it gets here).
pub(super) async fn ephemeral(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    id: MessageId,
    data: Value,
    reference: Option<Ref>,
    now: Millis,
) -> Result<ServerFrame, RouteError> {
    require(conn, room, Right::Send)?;
    let frame = ServerFrame::Ephemeral {
        room: room.to_string(),
        id: id.as_str().to_owned(),
        from: conn.sender(),
        data,
        ts: now,
    }
    .to_json();
    // Seq 0 marks it in the fan-out's logs.
    let d = ctx
        .fan_out_room(room.as_str(), 0, &frame, Some(&conn.connection_id), now)
        .await?;
    tracing::debug!(connection_id = %conn.connection_id, %room, delivered = d.delivered, queued = d.queued, "ephemeral sent");
    Ok(ServerFrame::Ack {
        id: id.as_str().to_owned(),
        seq: None,
        epoch: String::new(),
        duplicate: false,
        delivered: None,
        reference,
    })
}

pub(super) fn history_ttl(ctx: &Context<'_>) -> Millis {
    Context::ms(ctx.config.retention.history)
}

fn new_message(
    ctx: &Context<'_>,
    room: &RoomName,
    id: &str,
    from: Sender,
    data: Value,
    now: Millis,
) -> NewMessage {
    NewMessage {
        room: room.to_string(),
        id: id.to_owned(),
        from,
        data,
        ts: now,
        expires_at: now.saturating_add(history_ttl(ctx)),
        change: None,
    }
}

/// Delivers a stored message to the room's members except `exclude`.
/// Members are read after the append: whoever joins later finds the
/// message in history, so no joiner can miss it.
pub(super) async fn fan_out(
    ctx: &Context<'_>,
    stored: Message,
    exclude: Option<&str>,
    now: Millis,
) -> Result<Delivery, StoreError> {
    let (room, seq) = (stored.room.clone(), stored.seq);
    let frame = ServerFrame::Message(stored).to_json();
    let d = ctx.fan_out_room(&room, seq, &frame, exclude, now).await?;
    tracing::info!(%room, seq, delivered = d.delivered, gone = d.gone, failed = d.failed, queued = d.queued, "message sent");
    Ok(d)
}

/// Appends, then delivers to the whole room: a backend publish.
/// Returns (seq, duplicate, delivery).
async fn append_and_fan_out(
    ctx: &Context<'_>,
    room: &RoomName,
    id: &str,
    from: Sender,
    data: Value,
    now: Millis,
) -> Result<(u64, bool, Delivery), StoreError> {
    let message = new_message(ctx, room, id, from, data, now);
    let marker_expires_at = message.expires_at;
    let (stored, follows_settled) =
        match sequencer::append(ctx.store, ctx.clock, message, marker_expires_at).await? {
            Appended::Duplicate { seq } => {
                tracing::info!(%room, id, seq, "duplicate publish answered with the original seq");
                return Ok((seq, true, Delivery::default()));
            }
            Appended::New {
                message,
                follows_settled,
            } => (message, follows_settled),
        };
    let seq = stored.seq;
    record_stored(ctx, &stored, Origin::Server, None);
    let delivery = fan_out(ctx, stored, None, now).await?;
    keep_settled(ctx, room.as_str(), seq, follows_settled, now).await;
    Ok((seq, false, delivery))
}

/// `direct`: to every connection of one user. Needs the token's `direct`
/// claim. Not stored: an offline user does not get it (the ack says so).
pub(super) async fn direct(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    to: &str,
    id: MessageId,
    data: Value,
    reference: Option<Ref>,
    now: Millis,
) -> Result<ServerFrame, RouteError> {
    if !conn.direct {
        return Err(RouteError::rejected(
            ErrorCode::Forbidden,
            "your token does not allow direct messages",
        ));
    }
    let ack = |duplicate, delivered| ServerFrame::Ack {
        id: id.as_str().to_owned(),
        seq: None,
        epoch: String::new(),
        duplicate,
        delivered,
        reference: reference.clone(),
    };
    let recorded = ctx.events.is_on().then(|| data.clone());
    let delivery = direct_to_user(
        ctx,
        to,
        conn.sender(),
        id.as_str(),
        data,
        Some(&conn.connection_id),
        now,
    )
    .await?;
    if let Some(d) = &delivery {
        ctx.events.record(|| {
            Event::DirectSent(events::DirectSent {
                to: to.to_owned(),
                from: conn.sender(),
                id: id.as_str().to_owned(),
                connection_id: conn.connection_id.clone(),
                delivered: d.delivered,
                data: recorded,
                data_omitted: None,
                ts: now,
            })
        });
    }
    Ok(match delivery {
        None => ack(true, None),
        Some(d) => ack(false, Some(d.delivered)),
    })
}

/// Delivers a `direct` frame to every connection of `to` except `exclude`,
/// once per (sender, id): `None` when that id was already used (a retry),
/// and nothing is delivered again.
async fn direct_to_user(
    ctx: &Context<'_>,
    to: &str,
    from: Sender,
    id: &str,
    data: Value,
    exclude: Option<&str>,
    now: Millis,
) -> Result<Option<Delivery>, StoreError> {
    let ttl = Context::ms(ctx.config.retention.history);
    if !ctx
        .store
        .mark_direct(&from.user, id, now, now.saturating_add(ttl))
        .await?
    {
        return Ok(None);
    }
    let targets: Vec<String> = ctx
        .store
        .user_connections(to, now)
        .await?
        .into_iter()
        .filter(|c| Some(c.as_str()) != exclude)
        .collect();
    let frame = ServerFrame::Direct {
        from,
        id: id.to_owned(),
        data,
        ts: now,
    };
    Ok(Some(ctx.deliver(targets, &frame).await))
}

/// Where a backend publish goes.
#[derive(Clone, Debug, PartialEq)]
pub enum PublishTarget {
    /// A room: stored in history with a seq, like a client `send`.
    Room(String),
    /// Every connection of a user, as a `direct` frame.
    User(String),
}

/// What a backend publish did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    /// The room seq (room publishes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The id was used before; nothing was delivered again.
    pub duplicate: bool,
    /// Delivered, gone and failed counts: nothing is half-delivered silently.
    #[serde(flatten)]
    pub delivery: Delivery,
}

impl From<PublishReport> for crate::protocol::server_api::Published {
    /// The report as the server API answers it.
    fn from(r: PublishReport) -> Self {
        Self {
            seq: r.seq,
            duplicate: r.duplicate,
            delivered: r.delivery.delivered,
            gone: r.delivery.gone,
            failed: r.delivery.failed,
            queued: r.delivery.queued,
        }
    }
}

/// Why a backend publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The request is malformed: fix the caller.
    #[error("invalid publish request: {0}")]
    Invalid(#[from] FrameError),
    /// The store failed: retry with the same id.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// Publishes from a trusted backend (the publish function, invoked with IAM).
/// `id` makes retries idempotent; without one a random id is used.
pub async fn publish(
    ctx: &Context<'_>,
    target: PublishTarget,
    from: Sender,
    id: Option<&str>,
    data: Value,
) -> Result<PublishReport, PublishError> {
    let limits = &ctx.config.limits;
    let id = match id {
        Some(id) => MessageId::parse(id, limits)?,
        None => MessageId::parse(&uuid::Uuid::new_v4().simple().to_string(), limits)?,
    };
    crate::protocol::check_data(&data, limits)?;
    let now = ctx.now();
    let recorded = ctx.events.is_on().then(|| (data.clone(), from.clone()));
    let report = publish_to(ctx, target.clone(), from, &id, data, now).await?;
    if let (Some((data, from)), false) = (recorded, report.duplicate) {
        let (room, user) = match target {
            PublishTarget::Room(r) => (Some(r), None),
            PublishTarget::User(u) => (None, Some(u)),
        };
        ctx.events.record(|| {
            Event::MessagePublished(events::MessagePublished {
                room,
                user,
                seq: report.seq,
                id: id.as_str().to_owned(),
                from,
                delivered: report.delivery.delivered,
                data: Some(data),
                data_omitted: None,
                at: now,
            })
        });
    }
    Ok(report)
}

async fn publish_to(
    ctx: &Context<'_>,
    target: PublishTarget,
    from: Sender,
    id: &MessageId,
    data: Value,
    now: Millis,
) -> Result<PublishReport, PublishError> {
    let limits = &ctx.config.limits;
    match target {
        PublishTarget::Room(room) => {
            let room = RoomName::parse(&room, limits)?;
            let (seq, duplicate, delivery) =
                append_and_fan_out(ctx, &room, id.as_str(), from, data, now).await?;
            Ok(PublishReport {
                seq: Some(seq),
                duplicate,
                delivery,
            })
        }
        PublishTarget::User(user) => {
            let delivery = direct_to_user(ctx, &user, from, id.as_str(), data, None, now).await?;
            Ok(PublishReport {
                seq: None,
                duplicate: delivery.is_none(),
                delivery: delivery.unwrap_or_default(),
            })
        }
    }
}
