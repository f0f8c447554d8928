//! The `Store` port: connections, room memberships, history and counters.
//!
//! Adapters: [`memory::MemoryStore`] (tests and the emulator's default) and
//! the DynamoDB adapter. Both must pass the same [`conformance`] suite, which
//! is the executable specification of this trait.
//!
//! Times are milliseconds since the epoch, supplied by the caller, so the
//! domain's clock decides expiry. Every item carries `expires_at`; reads skip
//! expired items even before the backend deletes them (DynamoDB's TTL
//! deletion is lazy).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Identity, RoomRights};
use crate::clock::Millis;
use crate::config::RateLimit;
use crate::protocol::{Change, Message, Sender};
use crate::ratelimit::{RateState, Verdict};

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod memory;
pub mod sequencer;

/// What went wrong in the store. Each variant says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The item does not exist (or has expired). For a connection: treat it
    /// as disconnected, or re-create it from the event's authorizer context.
    #[error("{what} {key} not found")]
    NotFound {
        /// The kind of item.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A stored item is missing attributes or has wrong types. Report it;
    /// do not retry. The key names the item to inspect.
    #[error("corrupt item {key}: {reason}")]
    CorruptItem {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The item would exceed the backend's size limit. Refuse the input.
    #[error("item {key} would be {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The item's key.
        key: String,
        /// Its estimated size.
        size: usize,
        /// The backend's limit.
        limit: usize,
    },
    /// Concurrent writers kept conflicting after retries. Retry later.
    #[error("conflicting writes on {key}")]
    Conflict {
        /// The contested item's key.
        key: String,
    },
    /// The backend failed, timed out or throttled beyond the SDK's retries.
    /// Nothing may be assumed about the write; retry later (sends are
    /// idempotent by id, so retrying them is safe).
    #[error("store unavailable during {operation}: {reason}")]
    Unavailable {
        /// The operation attempted.
        operation: &'static str,
        /// The backend's explanation.
        reason: String,
    },
}

/// A live WebSocket connection and who is behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The user id.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Room rights from the token.
    pub rooms: RoomRights,
    /// Direct messages allowed.
    pub direct: bool,
    /// Token expiry, seconds since the epoch (updated by `auth`).
    pub token_exp: i64,
    /// When the connection was made.
    pub connected_at: Millis,
    /// When memberships were last refreshed for presence.
    pub refreshed_at: Millis,
    /// Rate limiter state.
    pub rate: RateState,
    /// When the item expires.
    pub expires_at: Millis,
}

impl ConnectionRecord {
    /// A new record for `identity`.
    pub fn new(connection_id: &str, identity: &Identity, now: Millis, expires_at: Millis) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            user: identity.user.clone(),
            name: identity.name.clone(),
            rooms: identity.rooms.clone(),
            direct: identity.direct,
            token_exp: identity.exp,
            connected_at: now,
            refreshed_at: now,
            rate: RateState::default(),
            expires_at,
        }
    }

    /// The sender as shown on messages.
    pub fn sender(&self) -> Sender {
        Sender {
            user: self.user.clone(),
            name: self.name.clone(),
        }
    }
}

/// One connection's membership of one room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The room.
    pub room: String,
    /// The member connection.
    pub connection_id: String,
    /// Its user.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Whether this connection may see presence and typing.
    pub presence: bool,
    /// When it joined.
    pub joined_at: Millis,
    /// Live until then; refreshed while the connection is active.
    pub expires_at: Millis,
    /// The member connection's token expiry, seconds since the epoch:
    /// fan-out skips (and closes) members whose token has expired, without
    /// reading their connection items. Updated by `auth`.
    #[serde(default = "no_expiry")]
    pub token_exp: i64,
}

fn no_expiry() -> i64 {
    i64::MAX
}

/// A message to append to a room.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    /// The room.
    pub room: String,
    /// The sender's client message id (the idempotency key, per sender).
    pub id: String,
    /// The sender.
    pub from: Sender,
    /// The payload.
    pub data: Value,
    /// Acceptance time.
    pub ts: Millis,
    /// History expiry.
    pub expires_at: Millis,
    /// On a change event: the message it changes.
    pub change: Option<Change>,
}

/// What applying a change did (`Store::apply_change`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeApplied {
    /// The message's latest version (or its tombstone) is now this change.
    Applied,
    /// A change with a later seq was applied already: this one is kept as
    /// a version (or, a repeated delete, nothing changed).
    Superseded,
    /// The message was deleted: an edit's own data was erased too.
    Deleted,
    /// The message is gone (expired): nothing to change.
    Missing,
}

/// The result of appending.
#[derive(Clone, Debug, PartialEq)]
pub enum Appended {
    /// Stored under a fresh seq.
    New {
        /// The message as stored.
        message: Message,
        /// Every seq below it was settled when it was taken: with it
        /// stored, the room is settled up to it, and the writer raises the
        /// watermark (after its ack) at no read cost.
        follows_settled: bool,
    },
    /// The sender used this id before: nothing was stored; this is the
    /// original seq.
    Duplicate {
        /// The original seq.
        seq: u64,
    },
}

/// What [`Store::commit`] did with a message at its reserved seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The message and its idempotency marker are stored, together.
    Stored,
    /// The sender used this id before (its marker is live): nothing was
    /// stored. The reserved seq is abandoned; close it.
    Duplicate {
        /// The seq the id was stored under.
        seq: u64,
    },
    /// The slot was closed by a tombstone first (the writer was slower
    /// than the hole timeout): nothing was stored; take a new seq.
    SlotClosed,
}

/// A seq taken by [`Store::reserve_seq`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// The seq: its slot is the taker's to fill.
    pub seq: u64,
    /// The settled watermark as it was when the seq was taken.
    pub settled: u64,
    /// The room's stream epoch: set (by [`new_epoch`]) when the counter is
    /// created, or by the first reservation on a counter that has none,
    /// and never changed while the counter lives.
    pub epoch: String,
}

/// A room's counter, as [`Store::seq_state`] reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqState {
    /// The highest seq taken; 0 for a new room.
    pub top: u64,
    /// Every slot up to this seq is filled or closed (raised by settle,
    /// never lowered).
    pub settled: u64,
    /// When `top` was taken, by its taker's clock.
    pub taken_at: Millis,
    /// The room's stream epoch; empty for a room without a counter (no
    /// stream yet), or one no seq has been taken from since epochs began.
    pub epoch: String,
}

/// A new stream epoch: 16 hex digits, 64 random bits. A room whose
/// counter is lost (a store that restarted, a restored table) starts a
/// stream with another, by which clients tell that its seqs started again.
pub fn new_epoch() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(16);
    id
}

/// One slot of a room's history.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    /// A stored message.
    Message(Message),
    /// A tombstone: the seq was taken but its message will never be
    /// stored. Never shown to clients.
    Closed {
        /// The seq.
        seq: u64,
        /// When the seq had been taken at the latest (the evidence that
        /// closed it): seqs below it were taken earlier still.
        taken_at: Millis,
    },
}

impl Slot {
    /// The slot's seq.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Message(m) => m.seq,
            Self::Closed { seq, .. } => *seq,
        }
    }

    /// When its seq had been taken at the latest.
    pub fn taken_at(&self) -> Millis {
        match self {
            Self::Message(m) => m.ts,
            Self::Closed { taken_at, .. } => *taken_at,
        }
    }
}

/// A page of history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// Messages in the order asked for (tombstones are left out).
    pub messages: Vec<Message>,
    /// More messages exist beyond this page.
    pub more: bool,
    /// The seq of the first live slot the page passed, message or
    /// tombstone: a resume checks it directly follows `since`, or the
    /// slots between are past retention.
    pub first_slot: Option<u64>,
}

/// A page of a room's members, in connection-id order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberPage {
    /// Live members on this page (a page may hold fewer than asked for:
    /// expired memberships are skipped after the limit is applied).
    pub members: Vec<Membership>,
    /// Where the next page starts (pass it as `after`); `None` on the last.
    pub next: Option<String>,
}

/// The result of [`Store::touch`].
#[derive(Clone, Debug, PartialEq)]
pub struct Touched {
    /// The connection after the update.
    pub connection: ConnectionRecord,
    /// The rate limiter's verdict on this message.
    pub verdict: Verdict,
}

/// What [`Store::remove_connection`] removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Removed {
    /// The connection item.
    pub connection: ConnectionRecord,
    /// Its memberships, one per room.
    pub memberships: Vec<Membership>,
}

/// What a `join` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The membership is new, not a refresh of a live one.
    pub is_new: bool,
    /// The room's member count just after this join, when the join changed
    /// it (a new membership). The change is atomic, so joins racing each
    /// other each see their own value: exactly one takes the room past a
    /// threshold. `None`: the count did not change; read it if needed.
    pub count: Option<u64>,
}

/// The storage port. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync {
    /// Writes the connection item and its user→connection index entry.
    async fn put_connection(&self, connection: &ConnectionRecord) -> Result<(), StoreError>;

    /// Reads a connection; `None` if absent or expired.
    async fn get_connection(
        &self,
        connection_id: &str,
        now: Millis,
    ) -> Result<Option<ConnectionRecord>, StoreError>;

    /// Atomically charges one message to the connection's rate limit.
    /// `NotFound` if the connection is absent or expired.
    async fn touch(
        &self,
        connection_id: &str,
        now: Millis,
        limit: &RateLimit,
    ) -> Result<Touched, StoreError>;

    /// Replaces the connection's identity after `auth` (same user).
    async fn update_identity(
        &self,
        connection_id: &str,
        identity: &Identity,
    ) -> Result<(), StoreError>;

    /// Deletes the connection, its index entry and all its memberships.
    /// `None` if it was already gone. Must stay correct for hundreds of rooms.
    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Removed>, StoreError>;

    /// Live connection ids of a user (all devices).
    async fn user_connections(&self, user: &str, now: Millis) -> Result<Vec<String>, StoreError>;

    /// Adds or refreshes a membership: whether it is new, and the room's
    /// member count right after it when this join changed the count.
    async fn join(&self, membership: &Membership) -> Result<JoinOutcome, StoreError>;

    /// Removes a membership; returns it if it existed.
    async fn leave(
        &self,
        room: &str,
        connection_id: &str,
    ) -> Result<Option<Membership>, StoreError>;

    /// Live members of a room (all pages). O(members): for broadcasts and
    /// presence rosters only, never for per-join or per-departure checks.
    async fn members(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError>;

    /// One page of a room's members: up to `limit` items after the
    /// connection id `after` (from the start if `None`). O(limit): large
    /// rooms are read page by page, so a fan-out can be cut into shards and
    /// a roster can stop at its cap.
    async fn members_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
        now: Millis,
    ) -> Result<MemberPage, StoreError>;

    /// How many member connections a room has. O(1): a counter kept by
    /// `join` (new members), `leave` and `remove_connection`. Memberships
    /// that expire without either (a lost `$disconnect`) may be counted
    /// until their connection is cleaned up, so treat it as approximate.
    async fn member_count(&self, room: &str, now: Millis) -> Result<u64, StoreError>;

    /// Live members of a room with the presence right (all pages): whom
    /// joins, departures and typing are told to. O(watchers), however big
    /// the room, so that joining or leaving a large room stays cheap.
    async fn watchers(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError>;

    /// A connection's live membership of a room, if any. O(1).
    async fn membership(
        &self,
        room: &str,
        connection_id: &str,
        now: Millis,
    ) -> Result<Option<Membership>, StoreError>;

    /// Live memberships of a room held by any of `user`'s connections.
    /// O(the user's devices), not O(members).
    async fn user_memberships(
        &self,
        room: &str,
        user: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError>;

    /// Live memberships of one connection, every room. O(its rooms).
    async fn memberships_of(
        &self,
        connection_id: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError>;

    /// Extends every membership of a connection to `expires_at` and records
    /// `now` as the connection's `refreshed_at`.
    async fn refresh_memberships(
        &self,
        connection_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError>;

    /// Takes the room's next seq: an atomic increment with no condition,
    /// so concurrent senders never conflict. Records `now` as when the top
    /// seq was taken, and gives the room's epoch (creating it with the
    /// counter, or on a counter that has none). The seq's slot is a hole until [`Store::commit`]
    /// fills it or [`Store::close_slot`] closes it.
    async fn reserve_seq(&self, room: &str, now: Millis) -> Result<Reserved, StoreError>;

    /// The seq `user` stored message `id` under in `room`, if its
    /// idempotency marker is live: a retry is answered without taking a
    /// seq (one that raced the original still is, by [`Store::commit`]).
    async fn sent_seq(
        &self,
        room: &str,
        user: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<u64>, StoreError>;

    /// Stores `message` in its reserved slot together with its sender's
    /// idempotency marker (expiring at `marker_expires_at`), as one atomic
    /// write that needs the slot empty and no live marker for the id.
    /// `writer` marks this attempt's own marker: an attempt that committed
    /// but whose answer was lost and retried finds it and reports `Stored`.
    async fn commit(
        &self,
        message: &Message,
        expires_at: Millis,
        marker_expires_at: Millis,
        writer: &str,
    ) -> Result<Committed, StoreError>;

    /// Writes a tombstone in slot `seq` unless the slot is filled. Returns
    /// whether it wrote it (false: a message or tombstone got there first).
    async fn close_slot(
        &self,
        room: &str,
        seq: u64,
        taken_at: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError>;

    /// The room's counter: the top seq, the settled watermark, and when the
    /// top seq was taken.
    async fn seq_state(&self, room: &str) -> Result<SeqState, StoreError>;

    /// The live slots (messages and tombstones) with `after < seq <= upto`,
    /// oldest first. O(upto - after): callers bound the range.
    async fn slots(
        &self,
        room: &str,
        after: u64,
        upto: u64,
        now: Millis,
    ) -> Result<Vec<Slot>, StoreError>;

    /// Raises the settled watermark to `seq`; a no-op if it is already at
    /// or above it (concurrent settles may race; the highest wins).
    async fn advance_settled(&self, room: &str, seq: u64) -> Result<(), StoreError>;

    /// Up to `limit` live messages with seq < `before` (all if `None`), newest first.
    async fn history_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError>;

    /// Up to `limit` live messages with seq > `after`, oldest first.
    async fn history_after(
        &self,
        room: &str,
        after: u64,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError>;

    /// The message `author` stored as `id` in `room`, in its latest version
    /// (with its revision), if it is live: what a change names. Found by
    /// its idempotency marker, then its slot. `None` for a change event
    /// (changes change messages, not each other).
    async fn find_message(
        &self,
        room: &str,
        author: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Message>, StoreError>;

    /// Applies `change`, a change event already stored in the room's
    /// stream, to the message at seq `target`. An edit records its seq as
    /// one of the message's versions and becomes the message's latest
    /// version unless a change with a later seq already is (the later seq
    /// wins). A delete erases the data of the message and of every edit
    /// of it, leaving the revision as a tombstone; it is final: an edit
    /// applied after it erases its own data instead (`Deleted`).
    async fn apply_change(
        &self,
        room: &str,
        target: u64,
        change: &Message,
    ) -> Result<ChangeApplied, StoreError>;

    /// Refuses `user` until `until`: their connects and the frames of their
    /// connections. Replaces any earlier revocation of the user; an `until`
    /// in the past lifts it.
    async fn revoke(&self, user: &str, until: Millis) -> Result<(), StoreError>;

    /// Until when `user` is refused, if they are at `now`. One strongly
    /// consistent read.
    async fn revoked_until(&self, user: &str, now: Millis) -> Result<Option<Millis>, StoreError>;

    /// Records that `user` sent direct message `id`. Returns false if it
    /// was recorded before (a retry: do not deliver again).
    async fn mark_direct(
        &self,
        user: &str,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError>;
}

/// Replaces stored identity fields from `identity`.
pub(crate) fn apply_identity(record: &mut ConnectionRecord, identity: &Identity) {
    record.name = identity.name.clone();
    record.rooms = identity.rooms.clone();
    record.direct = identity.direct;
    record.token_exp = identity.exp;
}
