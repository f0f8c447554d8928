//! The room's sequencer.
//!
//! A send takes its seq from the room's counter by an unconditional atomic
//! increment, then stores its message in that seq's slot with a condition
//! that the slot is empty. No send ever waits for, or retries because of,
//! another: a room's send rate is bounded by its counter item's write rate,
//! not by conflicts (docs/architecture.md weighs this against the
//! optimistic lock it replaced and a FIFO queue per room).
//!
//! The price is that a taken seq is not yet a stored one: its slot is a
//! *hole* until its writer fills it. So nothing promises a seq from the
//! counter. [`settle`] finds the highest seq below which every slot is
//! filled or closed, and that is what a joiner is told (`joined.seq`) and
//! what a resume's `missed` is complete up to. A hole whose writer died
//! (or whose answer was lost and retried) is closed by a tombstone once it
//! is older than the hole timeout. The tombstone is a conditional write
//! too, so exactly one of the late writer and the tombstone wins the slot;
//! a late writer that loses takes a new seq and tries again, so its message
//! is stored once, under the new seq, and nothing is dropped.

use std::collections::BTreeMap;

use super::{Appended, Committed, NewMessage, Slot, Store, StoreError};
use crate::clock::{Clock, Millis};
use crate::protocol::Message;

/// Attempts at storing one message whose slots keep being closed under it
/// (each by a writer that was slower than the hole timeout).
const APPEND_ATTEMPTS: u32 = 4;

/// Every this many seqs, the writer that stored one also settles the
/// room, so the settled watermark never lags far behind the counter and a
/// joiner's settle reads a few slots, not the room's whole history.
pub const SETTLE_EVERY: u64 = 16;

/// Most slots one settle reads. A room whose watermark lags further (a
/// hole open while thousands of later messages were stored) settles in
/// steps of this size.
const SETTLE_WINDOW: u64 = 1000;

/// Appends `msg` under a fresh seq, or reports the seq its id already has.
pub async fn append(
    store: &dyn Store,
    clock: &dyn Clock,
    msg: NewMessage,
    marker_expires_at: Millis,
) -> Result<Appended, StoreError> {
    // Marks this call's own writes: a commit whose answer was lost and was
    // retried finds its own marker and is reported as stored, not as a
    // duplicate, so it is fanned out.
    let writer = uuid::Uuid::new_v4().simple().to_string();
    // A retry (the client resending after a lost ack) is answered from its
    // marker without taking a seq, so the room's stream shows no closed
    // seq for it. A retry racing its original still gets here; commit
    // settles that race.
    if let Some(seq) = store
        .sent_seq(&msg.room, &msg.from.user, &msg.id, msg.ts)
        .await?
    {
        return Ok(Appended::Duplicate { seq });
    }
    for attempt in 0..APPEND_ATTEMPTS {
        let reserved = store.reserve_seq(&msg.room, clock.now_ms()).await?;
        let seq = reserved.seq;
        // The message's time is taken after its seq: every lower seq was
        // taken before it, which is how settle ages the holes below.
        let stored = Message {
            room: msg.room.clone(),
            seq,
            epoch: reserved.epoch.clone(),
            id: msg.id.clone(),
            from: msg.from.clone(),
            data: msg.data.clone(),
            ts: clock.now_ms().max(msg.ts),
            change: msg.change.clone().map(Box::new),
            revision: None,
        };
        let outcome = match store
            .commit(&stored, msg.expires_at, marker_expires_at, &writer)
            .await
        {
            Ok(outcome) => outcome,
            Err(e @ StoreError::TooLarge { .. }) => {
                // Refused before any write: the seq will never be filled.
                close_own(store, &stored, msg.expires_at).await;
                return Err(e);
            }
            // Whether it was stored is unknown: the slot is left to its
            // retry (the same id finds the marker) or to the hole timeout.
            Err(e) => return Err(e),
        };
        match outcome {
            Committed::Stored => {
                return Ok(Appended::New {
                    follows_settled: reserved.settled + 1 == seq,
                    message: stored,
                });
            }
            Committed::Duplicate { seq: original } => {
                // This seq will never be filled: close it now rather than
                // make readers wait out the hole timeout.
                close_own(store, &stored, msg.expires_at).await;
                return Ok(Appended::Duplicate { seq: original });
            }
            Committed::SlotClosed => {
                tracing::warn!(room = %msg.room, seq, attempt, "slot closed before the message was stored (a writer slower than the hole timeout); taking a new seq");
            }
        }
    }
    Err(StoreError::Conflict {
        key: format!("room {} (its slots were closed under the send)", msg.room),
    })
}

async fn close_own(store: &dyn Store, abandoned: &Message, expires_at: Millis) {
    let closed = store
        .close_slot(&abandoned.room, abandoned.seq, abandoned.ts, expires_at)
        .await;
    if let Err(e) = closed {
        // A reader closes it after the hole timeout instead.
        tracing::warn!(room = %abandoned.room, seq = abandoned.seq, error = %e, "could not close an abandoned seq");
    }
}

/// What a reader may rely on in a room.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settled {
    /// Every slot up to this seq is stored or closed: a joiner starts
    /// here, and a resume is complete up to here.
    pub seq: u64,
    /// Messages already stored above `seq` (behind an open hole), oldest
    /// first: a joiner gets them in its reply, since their fan-out may
    /// have run before it was a member.
    pub above: Vec<Message>,
    /// The room's stream epoch (empty without a stream).
    pub epoch: String,
}

/// How [`settle`] treats holes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettleOptions {
    /// A hole older than this is closed with a tombstone (milliseconds).
    pub hole_timeout: Millis,
    /// How long a tombstone is kept: as long as the history around it.
    pub history_ttl: Millis,
}

/// Finds the room's settled seq, closing holes older than the hole
/// timeout, and raises the stored watermark to it.
pub async fn settle(
    store: &dyn Store,
    room: &str,
    now: Millis,
    options: SettleOptions,
) -> Result<Settled, StoreError> {
    let state = store.seq_state(room).await?;
    let from = state.settled.min(state.top);
    if state.top == from {
        return Ok(Settled {
            seq: from,
            above: Vec::new(),
            epoch: state.epoch,
        });
    }
    let upto = state.top.min(from.saturating_add(SETTLE_WINDOW));
    let mut slots: BTreeMap<u64, Slot> = store
        .slots(room, from, upto, now)
        .await?
        .into_iter()
        .map(|s| (s.seq(), s))
        .collect();
    let timeout = options.hole_timeout;
    let expires_at = now.saturating_add(options.history_ttl);
    for (seq, taken_by) in old_holes(&slots, from, upto, state.taken_at, now, timeout) {
        if store.close_slot(room, seq, taken_by, expires_at).await? {
            tracing::info!(%room, seq, "closed a hole older than the hole timeout");
            slots.insert(
                seq,
                Slot::Closed {
                    seq,
                    taken_at: taken_by,
                },
            );
        } else if let Some(s) = store.slots(room, seq - 1, seq, now).await?.pop() {
            // Its writer (or another reader) got there first.
            slots.insert(seq, s);
        }
    }
    let mut seq = from;
    while slots.contains_key(&(seq + 1)) {
        seq += 1;
    }
    if seq > state.settled {
        store.advance_settled(room, seq).await?;
    }
    let above = slots
        .into_values()
        .filter_map(|s| match s {
            Slot::Message(m) if m.seq > seq => Some(m),
            _ => None,
        })
        .collect();
    Ok(Settled {
        seq,
        above,
        epoch: state.epoch,
    })
}

/// Holes in `(from, upto]` that are older than `timeout`, each with the
/// time by which its seq had been taken: the time of the nearest filled or
/// closed slot above it (seqs are taken in order), or of the counter's
/// latest increment for holes with nothing above them.
fn old_holes(
    slots: &BTreeMap<u64, Slot>,
    from: u64,
    upto: u64,
    top_taken_at: Millis,
    now: Millis,
    timeout: Millis,
) -> Vec<(u64, Millis)> {
    let mut evidence = top_taken_at;
    let mut holes = Vec::new();
    for seq in (from + 1..=upto).rev() {
        match slots.get(&seq) {
            Some(slot) => evidence = evidence.min(slot.taken_at()),
            None if evidence.saturating_add(timeout) <= now => holes.push((seq, evidence)),
            None => {}
        }
    }
    holes
}
