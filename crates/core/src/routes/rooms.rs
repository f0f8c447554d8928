//! Room actions: join (with resume), leave, typing, history.

use std::collections::BTreeMap;

use super::{Context, RouteError, presence_watchers};
use crate::auth::Right;
use crate::clock::Millis;
use crate::events::{self, Event, PresenceChange, RoomLeftReason};
use crate::protocol::{ErrorCode, Member, PresenceEvent, Ref, RoomName, ServerFrame};
use crate::store::{ConnectionRecord, Membership, sequencer};

/// Deny-by-default check of the token's room rights.
pub(super) fn require(
    conn: &ConnectionRecord,
    room: &RoomName,
    right: Right,
) -> Result<(), RouteError> {
    if conn.rooms.allows(room.as_str(), right) {
        return Ok(());
    }
    let what = match right {
        Right::Join => "join",
        Right::Send => "send to",
        Right::Presence => "see presence in",
        Right::Moderate => "change others' messages in",
    };
    Err(RouteError::rejected(
        ErrorCode::Forbidden,
        format!("your token does not allow you to {what} room {room}"),
    ))
}

/// Where a joiner left off: the last seq it saw, in which stream epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The last seq seen.
    pub(crate) since: Option<u64>,
    /// The epoch `since` counts in.
    pub(crate) epoch: Option<String>,
}

/// `join`: becomes a member, announces the user if this is their first
/// device in the room, and replies with the room's seq and epoch, its
/// members (with the presence right) and, with `since`, every message after
/// it: from the stream's start when the stream is not the one `since`
/// counts in.
pub(super) async fn join(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    resume: Resume,
    reference: Option<Ref>,
    now: Millis,
) -> Result<ServerFrame, RouteError> {
    require(conn, room, Right::Join)?;
    let sees_presence = conn.rooms.allows(room.as_str(), Right::Presence);
    let membership = Membership {
        room: room.to_string(),
        connection_id: conn.connection_id.clone(),
        user: conn.user.clone(),
        name: conn.name.clone(),
        presence: sees_presence,
        joined_at: now,
        expires_at: ctx.membership_expiry(now),
        token_exp: conn.token_exp,
    };
    let outcome = ctx.store.join(&membership).await?;
    let is_new = outcome.is_new;
    // O(1) and O(cap) reads only, however big the room: filling a room of
    // 10,000 with presence rights stays linear.
    let count = match outcome.count {
        Some(count) => count,
        None => ctx.store.member_count(room.as_str(), now).await?,
    };
    let cap = ctx.config.presence_max;
    let roster = if sees_presence {
        Some(roster(ctx, room, cap, now).await?)
    } else {
        None
    };
    if is_new {
        ctx.events.record(|| {
            Event::RoomJoined(events::RoomJoined {
                room: room.to_string(),
                connection_id: conn.connection_id.clone(),
                user: conn.user.clone(),
                at: now,
            })
        });
        announce_arrival(ctx, conn, room, count, roster.as_ref(), now).await?;
    }
    // Settle after the membership is stored: a message stored later is
    // fanned out to this connection; one stored earlier is settled or in
    // `above`. Clients dedupe what comes both ways by seq.
    let settled = sequencer::settle(ctx.store, room.as_str(), now, ctx.settle_options()).await?;
    let seq = settled.seq;
    let epoch = settled.epoch;
    // Seqs of another stream say nothing about this one: a client that
    // counted in an epoch the room no longer has (its stream started
    // again) gets this stream from its start.
    let restarted = resume.epoch.as_deref().is_some_and(|known| known != epoch);
    let since = if restarted { Some(0) } else { resume.since };
    if restarted {
        tracing::info!(connection_id = %conn.connection_id, %room, known = ?resume.epoch, %epoch, "the room's stream started again since the client's epoch: replaying it from its start");
    }
    let (missed, truncated, more) = match since {
        None if settled.above.is_empty() => (None, false, false),
        None => (Some(settled.above), false, false),
        Some(since) if since >= seq => {
            let above: Vec<_> = settled
                .above
                .into_iter()
                .filter(|m| m.seq > since)
                .collect();
            (Some(above), false, false)
        }
        Some(since) => {
            let page = ctx
                .store
                .history_after(room.as_str(), since, ctx.config.limits.resume_max, now)
                .await?;
            // The first retained slot (a message or a closed seq) must
            // directly follow `since`; otherwise the ones between are past
            // retention.
            let truncated = page.first_slot != Some(since + 1);
            (Some(page.messages), truncated, page.more)
        }
    };
    tracing::info!(connection_id = %conn.connection_id, %room, is_new, since, "joined");
    let roster_truncated = roster.as_ref().is_some_and(|(_, t)| *t);
    Ok(ServerFrame::Joined {
        room: room.to_string(),
        seq,
        epoch,
        members: roster.as_ref().map(|(m, _)| group_by_user(m)),
        member_count: roster.is_some().then_some(count),
        roster_truncated,
        missed,
        truncated,
        more,
        reference,
    })
}

/// Tells the watchers that `conn`'s user arrived, while the room is within
/// the presence cap. The join that takes it past the cap tells them instead
/// that their rosters are partial from now on: O(cap), once per crossing.
async fn announce_arrival(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    count: u64,
    roster: Option<&(Vec<Membership>, bool)>,
    now: Millis,
) -> Result<(), RouteError> {
    let cap = ctx.config.presence_max as u64;
    let not_me = |m: &Membership| m.connection_id != conn.connection_id;
    if count == cap + 1 {
        let watchers = ctx.live_watchers(room.as_str(), now, not_me).await?;
        let frame = ServerFrame::Roster {
            room: room.to_string(),
            member_count: count,
            truncated: true,
        };
        tracing::info!(connection_id = %conn.connection_id, %room, count, "room outgrew the presence cap");
        ctx.deliver(watchers, &frame).await;
        return Ok(());
    }
    if count > cap {
        return Ok(());
    }
    // A complete roster answers whom to tell at no extra cost.
    let change = match roster {
        Some((members, false)) if members.iter().any(|m| m.user == conn.user && not_me(m)) => None,
        Some((members, false)) => Some(presence_watchers(members, not_me)),
        _ => {
            ctx.presence_change_in_cap(room.as_str(), &conn.user, &conn.connection_id, now)
                .await?
        }
    };
    let Some(watchers) = change else {
        return Ok(());
    };
    ctx.record_presence(
        room.as_str(),
        &conn.user,
        &conn.name,
        PresenceChange::Joined,
    );
    if !watchers.is_empty() {
        let frame = ServerFrame::Presence {
            room: room.to_string(),
            user: conn.user.clone(),
            name: conn.name.clone(),
            event: PresenceEvent::Joined,
        };
        ctx.deliver(watchers, &frame).await;
    }
    Ok(())
}

/// Up to `cap` live members with valid tokens, and whether there are more.
pub(super) async fn roster(
    ctx: &Context<'_>,
    room: &RoomName,
    cap: usize,
    now: Millis,
) -> Result<(Vec<Membership>, bool), RouteError> {
    let page = ctx
        .store
        .members_page(room.as_str(), None, cap + 1, now)
        .await?;
    let mut members = ctx.live_tokens(page.members, now);
    let truncated = members.len() > cap || page.next.is_some();
    members.truncate(cap);
    Ok((members, truncated))
}

pub(super) fn group_by_user(members: &[Membership]) -> Vec<Member> {
    let mut users: BTreeMap<&str, Member> = BTreeMap::new();
    for m in members {
        users
            .entry(m.user.as_str())
            .or_insert_with(|| Member {
                user: m.user.clone(),
                name: m.name.clone(),
                devices: 0,
            })
            .devices += 1;
    }
    users.into_values().collect()
}

/// `leave`: idempotent; announces the user's departure when this was their
/// last device in the room.
pub(super) async fn leave(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    reference: Option<Ref>,
    now: Millis,
) -> Result<ServerFrame, RouteError> {
    if let Some(m) = ctx.store.leave(room.as_str(), &conn.connection_id).await? {
        let gone = ctx.announce_departure(&m, RoomLeftReason::Leave).await;
        if !gone.is_empty() {
            ctx.reap(gone).await;
        }
        tracing::info!(connection_id = %conn.connection_id, %room, since_ms = now - m.joined_at, "left");
    }
    Ok(ServerFrame::Left {
        room: room.to_string(),
        reference,
    })
}

/// `typing`: ephemeral, never stored; goes to the other users' presence
/// watchers. The sender must have joined the room.
pub(super) async fn typing(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    active: bool,
    now: Millis,
) -> Result<(), RouteError> {
    require(conn, room, Right::Send)?;
    let joined = ctx
        .store
        .membership(room.as_str(), &conn.connection_id, now)
        .await?;
    if joined.is_none() {
        return Err(RouteError::rejected(
            ErrorCode::NotJoined,
            format!("join room {room} before sending typing indicators"),
        ));
    }
    let frame = ServerFrame::Typing {
        room: room.to_string(),
        user: conn.user.clone(),
        name: conn.name.clone(),
        active,
    };
    if !ctx.within_presence_cap(room.as_str(), now).await? {
        return Ok(());
    }
    let watchers = ctx
        .live_watchers(room.as_str(), now, |m| m.user != conn.user)
        .await?;
    ctx.deliver(watchers, &frame).await;
    Ok(())
}

/// `history`: a page, newest first. Needs the join right, not membership.
pub(super) async fn history(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    room: &RoomName,
    before: Option<u64>,
    limit: Option<u32>,
    reference: Option<Ref>,
    now: Millis,
) -> Result<ServerFrame, RouteError> {
    require(conn, room, Right::Join)?;
    let limit = limit.unwrap_or(ctx.config.limits.history_page_default);
    let page = ctx
        .store
        .history_before(room.as_str(), before, limit, now)
        .await?;
    Ok(ServerFrame::History {
        room: room.to_string(),
        messages: page.messages,
        more: page.more,
        reference,
    })
}
