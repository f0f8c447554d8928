//! The `$default` route: every client frame comes through here.
//!
//! Every frame, valid or not, is charged to the connection's rate limit
//! first: a client flooding junk is throttled and then closed like any other
//! flooder. Then its token expiry is checked, the frame is judged (a bad one
//! gets an error with its `ref` and changes nothing stored), memberships are
//! refreshed when due, and the action is dispatched.

use super::{Context, RouteError, change, rooms, send};
use crate::auth::{Identity, Right, Verify};
use crate::clock::Millis;
use crate::events::{self, Event, Outbox, RoomLeftReason};
use crate::gateway::GatewayError;
use crate::metrics::Metric;
use crate::protocol::{
    Action, ChangeKind, ClientFrame, ClientLimits, ErrorCode, FrameError, ServerFrame,
    parse_client_frame,
};
use crate::ratelimit::Verdict;
use crate::store::{ConnectionRecord, Membership, StoreError};

/// One frame as the socket delivered it.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'a> {
    /// The connection that sent it.
    pub connection_id: &'a str,
    /// The authorizer context carried by the event; it lets a connection
    /// whose item was lost be re-registered instead of rejected.
    pub identity: Option<&'a Identity>,
    /// The frame's text, if any.
    pub body: Option<&'a str>,
    /// A binary frame (refused: the protocol is JSON text).
    pub is_binary: bool,
    /// When the gateway received the frame (API Gateway's
    /// `requestContext.requestTimeEpoch`), if known. The rate limit charges
    /// the frame at this time, not at the time its invocation got to run:
    /// a burst that waited behind cold starts or a concurrency limit is
    /// still the burst the client sent.
    pub received_at: Option<Millis>,
}

/// How far before the handler's clock a frame's arrival time is believed.
/// No frame waits longer than API Gateway's 29 s integration timeout, so an
/// older time is a wrong clock, and the frame is charged at the oldest time
/// a real frame could have.
const MAX_ARRIVAL_LAG_MS: Millis = 30_000;

/// The time a frame is charged at: its arrival, bounded by `now` (a clock
/// ahead of ours earns no credit) and by [`MAX_ARRIVAL_LAG_MS`].
fn charged_at(received_at: Option<Millis>, now: Millis) -> Millis {
    received_at.map_or(now, |t| {
        t.clamp(now.saturating_sub(MAX_ARRIVAL_LAG_MS), now)
    })
}

/// Handles one client frame. Returns the reply for the caller, if any.
/// Never fails: every problem becomes an `error` frame with the client's
/// `ref` and a log line with the connection id.
///
/// `verifier` checks the tokens of `auth` frames; only this route needs it.
pub async fn message(
    ctx: &Context<'_>,
    verifier: Option<&dyn Verify>,
    frame: Inbound<'_>,
) -> Option<ServerFrame> {
    let Inbound {
        connection_id,
        identity,
        body,
        is_binary,
        received_at,
    } = frame;
    ctx.metrics.add(Metric::Messages, 1.0);
    let parsed = if is_binary {
        Err(FrameError::new(
            ErrorCode::InvalidFrame,
            "binary frames are not supported; send JSON text frames",
        ))
    } else {
        parse_client_frame(body, &ctx.config.limits)
    };
    let (action, reference) = match &parsed {
        Ok(f) => (f.action.name(), f.reference.clone()),
        Err(e) => ("invalid", e.reference.clone()),
    };
    let arrived = charged_at(received_at, ctx.now());
    match handle(ctx, verifier, connection_id, identity, arrived, parsed).await {
        Ok(reply) => reply,
        Err(e) => {
            ctx.metrics.add(Metric::Rejects, 1.0);
            match &e {
                RouteError::Rejected(r) => {
                    tracing::info!(connection_id, action, code = r.code.as_str(), reason = %r.message, "rejected");
                    if alerts(r.code) {
                        record_rejected(
                            ctx,
                            r,
                            Some(action),
                            connection_id,
                            identity.map(|i| i.user.as_str()),
                        );
                    }
                }
                RouteError::Store(s) => {
                    tracing::error!(connection_id, action, error = %s, "store failure")
                }
            }
            Some(e.to_frame(reference))
        }
    }
}

/// Refusals a backend may want to alert on; other bad frames are the
/// client's bugs and are only logged.
fn alerts(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Forbidden | ErrorCode::RateLimited | ErrorCode::InvalidToken
    )
}

/// Records a `Request Rejected` event.
fn record_rejected(
    ctx: &Context<'_>,
    error: &FrameError,
    action: Option<&str>,
    connection_id: &str,
    user: Option<&str>,
) {
    ctx.events.record(|| {
        Event::Rejected(events::Rejected {
            code: error.code.as_str().to_owned(),
            reason: error.message.clone(),
            action: action.map(str::to_owned),
            connection_id: Some(connection_id.to_owned()),
            user: user.map(str::to_owned),
            at: ctx.now(),
        })
    });
}

async fn handle(
    ctx: &Context<'_>,
    verifier: Option<&dyn Verify>,
    connection_id: &str,
    identity: Option<&Identity>,
    arrived: Millis,
    parsed: Result<ClientFrame, FrameError>,
) -> Result<Option<ServerFrame>, RouteError> {
    let now = ctx.now();
    let touched = match touch_or_heal(ctx, connection_id, identity, arrived, now).await? {
        Touch::Live(touched) => touched,
        Touch::Closed => {
            tracing::info!(
                connection_id,
                "frame from a connection that has closed; dropped"
            );
            return Ok(None);
        }
        Touch::Revoked => {
            close(
                ctx,
                connection_id,
                ErrorCode::Forbidden,
                "this user is revoked; do not reconnect",
            )
            .await;
            return Ok(None);
        }
        Touch::Unregistered => {
            close(
                ctx,
                connection_id,
                ErrorCode::TokenExpired,
                "not registered and no valid identity; reconnect",
            )
            .await;
            return Ok(None);
        }
    };
    let conn = touched.connection;
    if ctx.token_expired(conn.token_exp, now) {
        close(
            ctx,
            connection_id,
            ErrorCode::TokenExpired,
            "token expired; reconnect with a fresh token",
        )
        .await;
        return Ok(None);
    }
    if let Verdict::Limited { strikes } = touched.verdict {
        if strikes >= ctx.config.rate.abuse_strikes {
            tracing::warn!(connection_id, strikes, "closing abusive connection");
            let closing = FrameError::new(
                ErrorCode::RateLimited,
                "sustained flooding; connection closed",
            );
            record_rejected(ctx, &closing, None, connection_id, Some(&conn.user));
            close(
                ctx,
                connection_id,
                ErrorCode::RateLimited,
                "sustained flooding; connection closed",
            )
            .await;
            return Ok(None);
        }
        let rate = ctx.config.rate;
        return Err(RouteError::rejected(
            ErrorCode::RateLimited,
            format!(
                "over {} messages/s (burst {}); slow down",
                rate.per_second, rate.burst
            ),
        ));
    }
    let frame = parsed?;
    refresh_if_due(ctx, &conn, now).await;
    dispatch(ctx, verifier, &conn, frame.action, frame.reference, now).await
}

/// What [`touch_or_heal`] found.
enum Touch {
    /// The connection, charged for this frame.
    Live(crate::store::Touched),
    /// The item is missing because the socket has closed: this frame was
    /// still being processed when `$disconnect` removed it. Drop the frame.
    Closed,
    /// The item is missing and the event has no valid identity to rebuild it.
    Unregistered,
    /// The item is missing because the backend revoked the user.
    Revoked,
}

/// Touches the connection (charged at `arrived`); if its item is missing (lost `$connect` write,
/// expired TTL) but the event carries a still-valid identity, registers it
/// again. Not when the socket has closed: each frame is its own invocation,
/// so a frame sent just before a close can run after `$disconnect`, and
/// re-registering then would resurrect a dead connection until its TTL.
async fn touch_or_heal(
    ctx: &Context<'_>,
    connection_id: &str,
    identity: Option<&Identity>,
    arrived: Millis,
    now: Millis,
) -> Result<Touch, RouteError> {
    match ctx
        .store
        .touch(connection_id, arrived, &ctx.config.rate)
        .await
    {
        Ok(t) => Ok(Touch::Live(t)),
        Err(StoreError::NotFound { .. }) => {
            let Some(identity) = identity.filter(|i| !ctx.token_expired(i.exp, now)) else {
                return Ok(Touch::Unregistered);
            };
            // One GET @connections on this rare path. Any answer but Gone
            // (including an outage) leaves healing on: a live user keeps working.
            if let Err(GatewayError::Gone) = ctx.gateway.info(connection_id).await {
                return Ok(Touch::Closed);
            }
            // A revoke removes its connections' items: never bring them back.
            if ctx
                .store
                .revoked_until(&identity.user, now)
                .await?
                .is_some()
            {
                return Ok(Touch::Revoked);
            }
            tracing::warn!(
                connection_id,
                "connection item missing; registering it again"
            );
            // Not a new connection: no `Connection Opened`.
            let off = Outbox::off();
            super::connect(
                ctx.store,
                ctx.clock,
                ctx.config,
                connection_id,
                identity,
                &off,
            )
            .await?;
            Ok(Touch::Live(
                ctx.store
                    .touch(connection_id, arrived, &ctx.config.rate)
                    .await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the connection's memberships live for presence, at most once per
/// refresh interval. A failure only delays presence expiry, so it is logged.
async fn refresh_if_due(ctx: &Context<'_>, conn: &ConnectionRecord, now: Millis) {
    let interval = Context::ms(ctx.config.retention.membership_refresh());
    if now.saturating_sub(conn.refreshed_at) < interval {
        return;
    }
    if let Err(e) = ctx
        .store
        .refresh_memberships(&conn.connection_id, now, ctx.membership_expiry(now))
        .await
    {
        tracing::warn!(connection_id = %conn.connection_id, error = %e, "membership refresh failed");
    }
}

/// Sends a last error frame and closes the connection. The frame goes out
/// through the gateway, not as the route response, because the route
/// response would arrive after the close.
pub(super) async fn close(ctx: &Context<'_>, connection_id: &str, code: ErrorCode, message: &str) {
    let frame = ServerFrame::error(code, message, None).to_json();
    if let Err(e) = ctx.gateway.post(connection_id, frame.as_bytes()).await {
        tracing::info!(connection_id, error = %e, "could not send the closing error");
    }
    match ctx.gateway.delete(connection_id).await {
        Ok(()) | Err(crate::gateway::GatewayError::Gone) => {
            tracing::info!(
                connection_id,
                code = code.as_str(),
                "connection closed by server"
            )
        }
        Err(e) => tracing::warn!(connection_id, error = %e, "could not close connection"),
    }
}

async fn dispatch(
    ctx: &Context<'_>,
    verifier: Option<&dyn Verify>,
    conn: &ConnectionRecord,
    action: Action,
    reference: Option<crate::protocol::Ref>,
    now: Millis,
) -> Result<Option<ServerFrame>, RouteError> {
    Ok(Some(match action {
        Action::Hello => welcome(ctx, conn, reference),
        Action::Heartbeat => ServerFrame::Pong { ts: now, reference },
        Action::Auth { token } => reauth(ctx, verifier, conn, &token, reference).await?,
        Action::Join { room, since, epoch } => {
            let resume = rooms::Resume { since, epoch };
            rooms::join(ctx, conn, &room, resume, reference, now).await?
        }
        Action::Leave { room } => rooms::leave(ctx, conn, &room, reference, now).await?,
        Action::History {
            room,
            before,
            limit,
        } => rooms::history(ctx, conn, &room, before, limit, reference, now).await?,
        Action::Typing { room, active } => {
            rooms::typing(ctx, conn, &room, active, now).await?;
            return Ok(None);
        }
        Action::Send {
            room,
            id,
            data,
            ephemeral: false,
        } => {
            return send::send(ctx, conn, &room, id, data, reference, now).await;
        }
        Action::Send {
            room,
            id,
            data,
            ephemeral: true,
        } => send::ephemeral(ctx, conn, &room, id, data, reference, now).await?,
        Action::Direct { to, id, data } => {
            send::direct(ctx, conn, &to, id, data, reference, now).await?
        }
        Action::Edit {
            room,
            id,
            message,
            author,
            replaces,
            data,
        } => {
            let request = change::ChangeRequest {
                room,
                id,
                message,
                author,
                kind: ChangeKind::Edit,
                replaces,
                data,
            };
            return change::change(ctx, conn, request, reference, now).await;
        }
        Action::Delete {
            room,
            id,
            message,
            author,
        } => {
            let request = change::ChangeRequest {
                room,
                id,
                message,
                author,
                kind: ChangeKind::Delete,
                replaces: None,
                data: serde_json::Value::Null,
            };
            return change::change(ctx, conn, request, reference, now).await;
        }
    }))
}

fn welcome(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    reference: Option<crate::protocol::Ref>,
) -> ServerFrame {
    let c = ctx.config;
    ServerFrame::Welcome {
        connection_id: conn.connection_id.clone(),
        user: conn.sender(),
        exp: conn.token_exp,
        limits: ClientLimits {
            max_data_bytes: c.limits.max_data_bytes,
            max_room_len: c.limits.max_room_len,
            max_id_len: c.limits.max_id_len,
            history_page_max: c.limits.history_page_max,
            rate_per_second: c.rate.per_second,
            rate_burst: c.rate.burst,
            idle_timeout_secs: c.retention.idle_timeout.as_secs(),
        },
        reference,
    }
}

/// `auth`: a fresh token for the same user extends the connection's life
/// and replaces its room rights.
async fn reauth(
    ctx: &Context<'_>,
    verifier: Option<&dyn Verify>,
    conn: &ConnectionRecord,
    token: &str,
    reference: Option<crate::protocol::Ref>,
) -> Result<ServerFrame, RouteError> {
    let Some(verifier) = verifier else {
        return Err(RouteError::rejected(
            ErrorCode::Unavailable,
            "token refresh is not configured",
        ));
    };
    let identity = verifier.verify(token).await.map_err(|e| {
        RouteError::rejected(ErrorCode::InvalidToken, format!("token refused: {e}"))
    })?;
    if identity.user != conn.user {
        return Err(RouteError::rejected(
            ErrorCode::InvalidToken,
            "the token is for another user; reconnect to change users",
        ));
    }
    ctx.store
        .update_identity(&conn.connection_id, &identity)
        .await?;
    let left = apply_rights(ctx, conn, &identity, ctx.now()).await?;
    tracing::info!(connection_id = %conn.connection_id, exp = identity.exp, left = left.len(), "token refreshed");
    Ok(ServerFrame::Authed {
        exp: identity.exp,
        left,
        reference,
    })
}

/// After `auth`: leaves the rooms the new token no longer grants (telling
/// their watchers), and re-writes the others with the new token's expiry,
/// name and presence right, so fan-out follows the new token at once.
/// Returns the rooms left.
async fn apply_rights(
    ctx: &Context<'_>,
    conn: &ConnectionRecord,
    identity: &Identity,
    now: Millis,
) -> Result<Vec<String>, RouteError> {
    let mut left = Vec::new();
    for m in ctx.store.memberships_of(&conn.connection_id, now).await? {
        if !identity.rooms.allows(&m.room, Right::Join) {
            if let Some(old) = ctx.store.leave(&m.room, &conn.connection_id).await? {
                let gone = ctx.announce_departure(&old, RoomLeftReason::Rights).await;
                if !gone.is_empty() {
                    ctx.reap(gone).await;
                }
            }
            tracing::info!(connection_id = %conn.connection_id, room = %m.room, "left: the new token does not grant the room");
            left.push(m.room);
            continue;
        }
        let renewed = Membership {
            presence: identity.rooms.allows(&m.room, Right::Presence),
            token_exp: identity.exp,
            name: identity.name.clone(),
            expires_at: ctx.membership_expiry(now),
            ..m
        };
        ctx.store.join(&renewed).await?;
    }
    Ok(left)
}
