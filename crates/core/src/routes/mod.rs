//! The domain: what `$connect`, `$disconnect` and each client action do.
//!
//! Written against the ports only ([`Store`], [`Gateway`],
//! [`Verify`](crate::auth::Verify),
//! [`Clock`], [`Metrics`]); nothing here knows about Lambda, DynamoDB or the
//! emulator, and this crate's `Cargo.toml` makes that a fact.
//! Replies to the caller are returned (they become the route response);
//! frames for anybody else go out through the gateway.

use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::events::{self, Event, Outbox, PresenceChange, RoomLeftReason};
use crate::gateway::{Gateway, fan_out};
use crate::metrics::{Metric, Metrics};
use crate::protocol::{ErrorCode, FrameError, PresenceEvent, Ref, ServerFrame};
use crate::shard::Dispatch;
use crate::store::{Membership, Removed, Store, StoreError};

mod change;
mod connection;
mod fanout;
mod message;
mod rooms;
mod send;
pub mod server;

pub use connection::{connect, disconnect, disconnect_closed};
pub use fanout::{FanoutError, ShardReport, fanout};
pub use message::{Inbound, message};
pub use send::{PublishError, PublishReport, PublishTarget, publish};

/// What a route needs. Built per invocation from long-lived parts.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Connections, rooms, history.
    pub store: &'a dyn Store,
    /// Posting to other connections.
    pub gateway: &'a dyn Gateway,
    /// The time.
    pub clock: &'a dyn Clock,
    /// Limits and knobs.
    pub config: &'a Config,
    /// Where counts go.
    pub metrics: &'a dyn Metrics,
    /// Where large rooms' fan-out goes, in shards; `None`: always inline.
    pub dispatch: Option<&'a dyn Dispatch>,
    /// This invocation's events for the team's backend.
    pub events: &'a Outbox,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", self.config)
            .finish_non_exhaustive()
    }
}

/// Why a route failed. Each variant says what the caller does with it.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The client asked for something it may not or cannot have: send it an
    /// error frame with this code. Nothing was changed.
    #[error(transparent)]
    Rejected(#[from] FrameError),
    /// The store failed: send `unavailable`; the client may retry (sends
    /// are idempotent by id).
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl RouteError {
    /// A rejection with a code and message.
    pub(crate) fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Rejected(FrameError::new(code, message))
    }

    /// The error frame for the client.
    pub fn to_frame(&self, reference: Option<Ref>) -> ServerFrame {
        match self {
            Self::Rejected(e) => ServerFrame::error(e.code, e.message.clone(), reference),
            Self::Store(_) => ServerFrame::error(
                ErrorCode::Unavailable,
                "temporarily unavailable; retry (sends with the same id are not duplicated)",
                reference,
            ),
        }
    }
}

impl Context<'_> {
    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn ms(d: std::time::Duration) -> Millis {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    fn settle_options(&self) -> crate::store::sequencer::SettleOptions {
        crate::store::sequencer::SettleOptions {
            hole_timeout: Self::ms(self.config.hole_timeout),
            history_ttl: Self::ms(self.config.retention.history),
        }
    }

    fn membership_expiry(&self, now: Millis) -> Millis {
        now.saturating_add(Self::ms(self.config.retention.membership_ttl()))
    }

    /// Whether a token that expires at `exp` (seconds) is past its leeway.
    fn token_expired(&self, exp: i64, now: Millis) -> bool {
        let leeway = i64::try_from(self.config.token_leeway_secs).unwrap_or(0);
        now / 1000 > exp.saturating_add(leeway)
    }

    /// The members whose token is still valid: a connection whose token has
    /// expired gets nothing more, even if it never sends another frame.
    fn live_tokens(&self, members: Vec<Membership>, now: Millis) -> Vec<Membership> {
        members
            .into_iter()
            .filter(|m| !self.token_expired(m.token_exp, now))
            .collect()
    }

    /// Closes connections whose token expired, with a last `token_expired`
    /// error: found at fan-out, they are not left open receiving nothing.
    async fn close_expired(&self, members: &[Membership], now: Millis) {
        let expired: Vec<&Membership> = members
            .iter()
            .filter(|m| self.token_expired(m.token_exp, now))
            .collect();
        for m in expired {
            tracing::info!(connection_id = %m.connection_id, room = %m.room, "token expired; closing at fan-out");
            message::close(
                self,
                &m.connection_id,
                ErrorCode::TokenExpired,
                "token expired; reconnect with a fresh token",
            )
            .await;
        }
    }

    /// Sends `frame` to `targets`, then removes the connections that turned
    /// out to be gone, announcing their departure.
    async fn deliver(&self, targets: Vec<String>, frame: &ServerFrame) -> Delivery {
        if targets.is_empty() {
            return Delivery::default();
        }
        self.deliver_text(targets, &frame.to_json()).await
    }

    /// [`Self::deliver`] for a frame already serialised.
    async fn deliver_text(&self, targets: Vec<String>, payload: &str) -> Delivery {
        if targets.is_empty() {
            return Delivery::default();
        }
        self.metrics.add(Metric::FanoutSize, targets.len() as f64);
        let report = fan_out(
            self.gateway,
            targets,
            payload.as_bytes(),
            &self.config.fanout,
        )
        .await;
        self.metrics.add(Metric::Delivered, report.delivered as f64);
        self.metrics
            .add(Metric::GoneConnections, report.gone.len() as f64);
        let delivery = Delivery {
            delivered: report.delivered,
            gone: report.gone.len(),
            failed: report.failed,
            queued: 0,
        };
        if !report.gone.is_empty() {
            self.reap(report.gone).await;
        }
        delivery
    }

    /// Removes gone connections and tells their rooms. Connections found gone
    /// while announcing are removed silently, so this never recurses.
    async fn reap(&self, gone: Vec<String>) {
        for id in gone {
            tracing::info!(connection_id = %id, "removing gone connection");
            let removed = match self.store.remove_connection(&id).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "could not remove gone connection");
                    continue;
                }
            };
            let closed = Closed {
                code: None,
                reason: Some("gone".into()),
            };
            for more in self.announce_removal(&removed, closed).await {
                if let Err(e) = self.store.remove_connection(&more).await {
                    tracing::warn!(connection_id = %more, error = %e, "could not remove gone connection");
                }
            }
        }
    }

    /// Tells every room a removed connection was in, where its user has no
    /// other device left, and records its close. Returns connections found
    /// gone while telling.
    async fn announce_removal(&self, removed: &Removed, closed: Closed) -> Vec<String> {
        let mut gone = Vec::new();
        for m in &removed.memberships {
            gone.extend(self.announce_departure(m, RoomLeftReason::Disconnect).await);
        }
        let c = &removed.connection;
        self.events.record(|| {
            Event::ConnectionClosed(events::ConnectionClosed {
                connection_id: c.connection_id.clone(),
                user: c.user.clone(),
                close_code: closed.code,
                reason: closed.reason,
                rooms: removed.memberships.iter().map(|m| m.room.clone()).collect(),
                connected_at: c.connected_at,
                at: self.now(),
            })
        });
        gone
    }

    /// Whether `user`'s presence in `room` changes with `connection_id`
    /// (their first device arriving or last leaving), and if so whom to
    /// tell: the room's presence watchers other than `connection_id`.
    /// `None`: it does not change, or the room is past the presence cap.
    ///
    /// Costs O(1) in a room past the cap, else O(watchers + the user's
    /// devices), never O(members): a crowd joining or leaving at once does
    /// not turn quadratic. With nobody watching and events off, the user's
    /// devices are not read (nobody would be told).
    async fn presence_change(
        &self,
        room: &str,
        user: &str,
        connection_id: &str,
        now: Millis,
    ) -> Result<Option<Vec<String>>, StoreError> {
        if !self.within_presence_cap(room, now).await? {
            return Ok(None);
        }
        self.presence_change_in_cap(room, user, connection_id, now)
            .await
    }

    /// [`Self::presence_change`] once the room is known to be within the
    /// presence cap.
    async fn presence_change_in_cap(
        &self,
        room: &str,
        user: &str,
        connection_id: &str,
        now: Millis,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let not_me = |m: &Membership| m.connection_id != connection_id;
        let watchers = self.live_watchers(room, now, not_me).await?;
        if watchers.is_empty() && !self.events.is_on() {
            return Ok(Some(watchers));
        }
        self.unless_present(room, user, connection_id, now, watchers)
            .await
    }

    /// `watchers`, unless `user` has a device in `room` other than
    /// `connection_id` (they were, and stay, present).
    async fn unless_present(
        &self,
        room: &str,
        user: &str,
        connection_id: &str,
        now: Millis,
        watchers: Vec<String>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let devices = self.store.user_memberships(room, user, now).await?;
        Ok((!devices.iter().any(|m| m.connection_id != connection_id)).then_some(watchers))
    }

    /// Whether the room is small enough for presence and typing events.
    /// O(1): rooms past the cap tell nobody, whatever their size.
    async fn within_presence_cap(&self, room: &str, now: Millis) -> Result<bool, StoreError> {
        Ok(self.store.member_count(room, now).await? <= self.config.presence_max as u64)
    }

    /// Connection ids of the room's live watchers (presence right, valid
    /// token) that `keep` accepts. O(watchers).
    async fn live_watchers(
        &self,
        room: &str,
        now: Millis,
        keep: impl Fn(&Membership) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let watchers = self.live_tokens(self.store.watchers(room, now).await?, now);
        Ok(presence_watchers(&watchers, keep))
    }

    /// Records a presence change.
    fn record_presence(&self, room: &str, user: &str, name: &str, event: PresenceChange) {
        self.events.record(|| {
            Event::PresenceChanged(events::PresenceChanged {
                room: room.to_owned(),
                user: user.to_owned(),
                name: name.to_owned(),
                event,
                at: self.now(),
            })
        });
    }

    /// After `m` left its room: records it and, if its user has no other
    /// device there, tells the room's presence watchers. Returns
    /// connections found gone.
    async fn announce_departure(&self, m: &Membership, reason: RoomLeftReason) -> Vec<String> {
        self.events.record(|| {
            Event::RoomLeft(events::RoomLeft {
                room: m.room.clone(),
                connection_id: m.connection_id.clone(),
                user: m.user.clone(),
                reason,
                at: self.now(),
            })
        });
        let targets = match self
            .presence_change(&m.room, &m.user, &m.connection_id, self.now())
            .await
        {
            Ok(Some(targets)) => targets,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::warn!(room = %m.room, connection_id = %m.connection_id, error = %e, "could not find whom to tell of a departure");
                return Vec::new();
            }
        };
        self.record_presence(&m.room, &m.user, &m.name, PresenceChange::Left);
        if targets.is_empty() {
            return Vec::new();
        }
        let frame = ServerFrame::Presence {
            room: m.room.clone(),
            user: m.user.clone(),
            name: m.name.clone(),
            event: PresenceEvent::Left,
        };
        let payload = frame.to_json();
        fan_out(
            self.gateway,
            targets,
            payload.as_bytes(),
            &self.config.fanout,
        )
        .await
        .gone
    }
}

/// How a connection closed, where known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Closed {
    /// The WebSocket close code (API Gateway's `disconnectStatusCode`).
    pub code: Option<i64>,
    /// Why (API Gateway's `disconnectReason`).
    pub reason: Option<String>,
}

/// What one fan-out did: every target is counted exactly once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Connections that accepted the frame.
    pub delivered: usize,
    /// Connections found gone (and removed).
    pub gone: usize,
    /// Calls that failed otherwise (timeouts, throttling, outages).
    pub failed: usize,
    /// Connections handed to the `fanout` function (a large room): they
    /// are delivered by shards, after this report.
    #[serde(skip_serializing_if = "is_zero")]
    pub queued: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Connections in `members` that may see presence and pass `keep`.
fn presence_watchers(members: &[Membership], keep: impl Fn(&Membership) -> bool) -> Vec<String> {
    members
        .iter()
        .filter(|m| m.presence && keep(m))
        .map(|m| m.connection_id.clone())
        .collect()
}

#[cfg(test)]
mod tests;
