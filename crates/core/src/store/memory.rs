//! The in-memory `Store`: unit tests and the emulator's embedded store.
//!
//! One `std::sync::Mutex` over plain maps. It is never held across an
//! `.await` (no method awaits while holding it), so it cannot deadlock the
//! runtime, and every operation is atomic, as the trait requires.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    ChangeApplied, Committed, ConnectionRecord, JoinOutcome, MemberPage, Membership, Page, Removed,
    Reserved, SeqState, Slot, Store, StoreError, Touched, apply_identity,
};
use crate::auth::Identity;
use crate::clock::Millis;
use crate::config::RateLimit;
use crate::protocol::Message;
use crate::ratelimit;

#[derive(Default)]
struct Inner {
    connections: HashMap<String, ConnectionRecord>,
    by_user: HashMap<String, BTreeSet<String>>,
    rooms: HashMap<String, BTreeMap<String, Membership>>,
    /// room → connections whose membership has the presence right.
    watchers: HashMap<String, BTreeSet<String>>,
    by_connection: HashMap<String, BTreeSet<String>>,
    seqs: HashMap<String, SeqState>,
    /// room → seq → (slot, expires_at)
    history: HashMap<String, BTreeMap<u64, (Slot, Millis)>>,
    /// (room, user, id) → (seq, expires_at, writer)
    markers: HashMap<(String, String, String), (u64, Millis, String)>,
    /// (user, id) → expires_at
    direct_markers: HashMap<(String, String), Millis>,
    /// Revoked users, until when.
    revoked: HashMap<String, Millis>,
    /// (room, message seq) → the seqs of its edits (`changes`).
    versions: HashMap<(String, u64), BTreeSet<u64>>,
    /// When expired items were last deleted (`sweep`).
    swept_at: Millis,
}

mod changes;
mod sweep;

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere mid-update; the maps are
        // still structurally valid, so keep serving rather than cascade.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Keeps `watchers` in step with a membership added or removed.
    fn index_watcher(&mut self, room: &str, id: &str, watching: bool) {
        if watching {
            self.watchers
                .entry(room.to_owned())
                .or_default()
                .insert(id.to_owned());
        } else if let Some(set) = self.watchers.get_mut(room) {
            set.remove(id);
            if set.is_empty() {
                self.watchers.remove(room);
            }
        }
    }

    fn live_member(&self, room: &str, id: &str, now: Millis) -> Option<&Membership> {
        self.rooms
            .get(room)
            .and_then(|r| r.get(id))
            .filter(|m| m.expires_at > now)
    }
}

fn not_found(what: &'static str, key: &str) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.to_owned(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_connection(&self, c: &ConnectionRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.sweep_if_due(c.connected_at);
        g.by_user
            .entry(c.user.clone())
            .or_default()
            .insert(c.connection_id.clone());
        g.connections.insert(c.connection_id.clone(), c.clone());
        Ok(())
    }

    async fn get_connection(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        Ok(self
            .lock()
            .connections
            .get(id)
            .filter(|c| c.expires_at > now)
            .cloned())
    }

    async fn touch(&self, id: &str, now: Millis, limit: &RateLimit) -> Result<Touched, StoreError> {
        let mut g = self.lock();
        let c = g
            .connections
            .get_mut(id)
            .filter(|c| c.expires_at > now)
            .ok_or_else(|| not_found("connection", id))?;
        let (state, verdict) = ratelimit::charge(c.rate, now, limit);
        c.rate = state;
        Ok(Touched {
            connection: c.clone(),
            verdict,
        })
    }

    async fn update_identity(&self, id: &str, identity: &Identity) -> Result<(), StoreError> {
        let mut g = self.lock();
        let c = g
            .connections
            .get_mut(id)
            .ok_or_else(|| not_found("connection", id))?;
        apply_identity(c, identity);
        Ok(())
    }

    async fn remove_connection(&self, id: &str) -> Result<Option<Removed>, StoreError> {
        let mut g = self.lock();
        let Some(connection) = g.connections.remove(id) else {
            return Ok(None);
        };
        if let Some(set) = g.by_user.get_mut(&connection.user) {
            set.remove(id);
            if set.is_empty() {
                g.by_user.remove(&connection.user);
            }
        }
        let rooms = g.by_connection.remove(id).unwrap_or_default();
        let mut memberships = Vec::with_capacity(rooms.len());
        for room in rooms {
            if let Some(members) = g.rooms.get_mut(&room) {
                if let Some(m) = members.remove(id) {
                    memberships.push(m);
                }
                if members.is_empty() {
                    g.rooms.remove(&room);
                }
            }
            g.index_watcher(&room, id, false);
        }
        Ok(Some(Removed {
            connection,
            memberships,
        }))
    }

    async fn user_connections(&self, user: &str, now: Millis) -> Result<Vec<String>, StoreError> {
        let g = self.lock();
        Ok(g.by_user
            .get(user)
            .map(|ids| {
                ids.iter()
                    .filter(|id| g.connections.get(*id).is_some_and(|c| c.expires_at > now))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn join(&self, m: &Membership) -> Result<JoinOutcome, StoreError> {
        let mut g = self.lock();
        g.sweep_if_due(m.joined_at);
        g.by_connection
            .entry(m.connection_id.clone())
            .or_default()
            .insert(m.room.clone());
        let previous = g
            .rooms
            .entry(m.room.clone())
            .or_default()
            .insert(m.connection_id.clone(), m.clone());
        g.index_watcher(&m.room, &m.connection_id, m.presence);
        // An expired membership counts as new: its owner was not present.
        let is_new = previous.is_none_or(|p| p.expires_at <= m.joined_at);
        // Counted under the lock, so racing joins each see their own count.
        let count = is_new.then(|| {
            g.rooms.get(&m.room).map_or(0, |members| {
                members
                    .values()
                    .filter(|x| x.expires_at > m.joined_at)
                    .count() as u64
            })
        });
        Ok(JoinOutcome { is_new, count })
    }

    async fn leave(&self, room: &str, id: &str) -> Result<Option<Membership>, StoreError> {
        let mut g = self.lock();
        if let Some(rooms) = g.by_connection.get_mut(id) {
            rooms.remove(room);
        }
        let removed = g.rooms.get_mut(room).and_then(|members| members.remove(id));
        if g.rooms.get(room).is_some_and(BTreeMap::is_empty) {
            g.rooms.remove(room);
        }
        g.index_watcher(room, id, false);
        Ok(removed)
    }

    async fn watchers(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        let g = self.lock();
        Ok(g.watchers
            .get(room)
            .into_iter()
            .flatten()
            .filter_map(|id| g.live_member(room, id, now).cloned())
            .collect())
    }

    async fn membership(
        &self,
        room: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(self.lock().live_member(room, id, now).cloned())
    }

    async fn user_memberships(
        &self,
        room: &str,
        user: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError> {
        let g = self.lock();
        Ok(g.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter(|id| g.connections.get(*id).is_some_and(|c| c.expires_at > now))
            .filter_map(|id| g.live_member(room, id, now).cloned())
            .collect())
    }

    async fn members(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        Ok(self
            .lock()
            .rooms
            .get(room)
            .map(|m| m.values().filter(|m| m.expires_at > now).cloned().collect())
            .unwrap_or_default())
    }

    async fn members_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
        now: Millis,
    ) -> Result<MemberPage, StoreError> {
        use std::ops::Bound;
        let g = self.lock();
        let Some(members) = g.rooms.get(room) else {
            return Ok(MemberPage::default());
        };
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        // Like a DynamoDB Query: the limit counts items read, expired or not.
        let read: Vec<&Membership> = members
            .range((start, Bound::Unbounded))
            .map(|(_, m)| m)
            .take(limit.max(1))
            .collect();
        let next = match read.last() {
            Some(last)
                if members
                    .range::<String, _>((
                        Bound::Excluded(last.connection_id.clone()),
                        Bound::Unbounded,
                    ))
                    .next()
                    .is_some() =>
            {
                Some(last.connection_id.clone())
            }
            _ => None,
        };
        Ok(MemberPage {
            members: read
                .into_iter()
                .filter(|m| m.expires_at > now)
                .cloned()
                .collect(),
            next,
        })
    }

    async fn member_count(&self, room: &str, now: Millis) -> Result<u64, StoreError> {
        let g = self.lock();
        let live = g
            .rooms
            .get(room)
            .map_or(0, |m| m.values().filter(|m| m.expires_at > now).count());
        Ok(live as u64)
    }

    async fn memberships_of(&self, id: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        let g = self.lock();
        Ok(g.by_connection
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|room| g.live_member(room, id, now).cloned())
            .collect())
    }

    async fn refresh_memberships(
        &self,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        let inner = &mut *g;
        let c = inner
            .connections
            .get_mut(id)
            .ok_or_else(|| not_found("connection", id))?;
        c.refreshed_at = now;
        for room in inner.by_connection.get(id).into_iter().flatten() {
            if let Some(m) = inner.rooms.get_mut(room).and_then(|r| r.get_mut(id)) {
                m.expires_at = expires_at;
            }
        }
        Ok(())
    }

    async fn reserve_seq(&self, room: &str, now: Millis) -> Result<Reserved, StoreError> {
        let mut g = self.lock();
        let state = g.seqs.entry(room.to_owned()).or_default();
        state.top += 1;
        state.taken_at = now;
        if state.epoch.is_empty() {
            state.epoch = super::new_epoch();
        }
        Ok(Reserved {
            seq: state.top,
            settled: state.settled,
            epoch: state.epoch.clone(),
        })
    }

    async fn sent_seq(
        &self,
        room: &str,
        user: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<u64>, StoreError> {
        let key = (room.to_owned(), user.to_owned(), id.to_owned());
        Ok(self
            .lock()
            .markers
            .get(&key)
            .filter(|(_, expires, _)| *expires > now)
            .map(|(seq, _, _)| *seq))
    }

    async fn commit(
        &self,
        message: &Message,
        expires_at: Millis,
        marker_expires_at: Millis,
        writer: &str,
    ) -> Result<Committed, StoreError> {
        let mut g = self.lock();
        g.sweep_if_due(message.ts);
        let key = (
            message.room.clone(),
            message.from.user.clone(),
            message.id.clone(),
        );
        if let Some((seq, expires, by)) = g.markers.get(&key)
            && *expires > message.ts
        {
            return Ok(if by == writer && *seq == message.seq {
                Committed::Stored
            } else {
                Committed::Duplicate { seq: *seq }
            });
        }
        let slots = g.history.entry(message.room.clone()).or_default();
        if slots.contains_key(&message.seq) {
            return Ok(Committed::SlotClosed);
        }
        slots.insert(message.seq, (Slot::Message(message.clone()), expires_at));
        g.markers
            .insert(key, (message.seq, marker_expires_at, writer.to_owned()));
        Ok(Committed::Stored)
    }

    async fn close_slot(
        &self,
        room: &str,
        seq: u64,
        taken_at: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let slots = g.history.entry(room.to_owned()).or_default();
        if slots.contains_key(&seq) {
            return Ok(false);
        }
        slots.insert(seq, (Slot::Closed { seq, taken_at }, expires_at));
        Ok(true)
    }

    async fn seq_state(&self, room: &str) -> Result<SeqState, StoreError> {
        Ok(self.lock().seqs.get(room).cloned().unwrap_or_default())
    }

    async fn slots(
        &self,
        room: &str,
        after: u64,
        upto: u64,
        now: Millis,
    ) -> Result<Vec<Slot>, StoreError> {
        let g = self.lock();
        let Some(h) = g.history.get(room) else {
            return Ok(Vec::new());
        };
        if upto <= after {
            return Ok(Vec::new());
        }
        Ok(h.range(after + 1..=upto)
            .filter(|(_, (_, exp))| *exp > now)
            .map(|(_, (slot, _))| slot.clone())
            .collect())
    }

    async fn advance_settled(&self, room: &str, seq: u64) -> Result<(), StoreError> {
        let mut g = self.lock();
        let state = g.seqs.entry(room.to_owned()).or_default();
        state.settled = state.settled.max(seq);
        Ok(())
    }

    async fn history_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let g = self.lock();
        let Some(h) = g.history.get(room) else {
            return Ok(Page::default());
        };
        let upper = before.unwrap_or(u64::MAX);
        let live = h.range(..upper).rev().filter(|(_, (_, exp))| *exp > now);
        Ok(page(live, limit))
    }

    async fn history_after(
        &self,
        room: &str,
        after: u64,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let g = self.lock();
        let Some(h) = g.history.get(room) else {
            return Ok(Page::default());
        };
        let live = h
            .range(after.saturating_add(1)..)
            .filter(|(_, (_, exp))| *exp > now);
        Ok(page(live, limit))
    }

    async fn mark_direct(
        &self,
        user: &str,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock();
        g.sweep_if_due(now);
        let key = (user.to_owned(), id.to_owned());
        if g.direct_markers.get(&key).is_some_and(|exp| *exp > now) {
            return Ok(false);
        }
        g.direct_markers.insert(key, expires_at);
        Ok(true)
    }

    async fn find_message(
        &self,
        room: &str,
        author: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Message>, StoreError> {
        Ok(self.lock().find_message(room, author, id, now))
    }

    async fn apply_change(
        &self,
        room: &str,
        target: u64,
        change: &Message,
    ) -> Result<ChangeApplied, StoreError> {
        Ok(self.lock().apply_change(room, target, change))
    }

    async fn revoke(&self, user: &str, until: Millis) -> Result<(), StoreError> {
        self.lock().revoked.insert(user.to_owned(), until);
        Ok(())
    }

    async fn revoked_until(&self, user: &str, now: Millis) -> Result<Option<Millis>, StoreError> {
        let mut g = self.lock();
        g.sweep_if_due(now);
        Ok(g.revoked.get(user).copied().filter(|until| *until > now))
    }
}

fn page<'a>(live: impl Iterator<Item = (&'a u64, &'a (Slot, Millis))>, limit: u32) -> Page {
    let limit = limit as usize;
    let mut page = Page::default();
    for (seq, (slot, _)) in live {
        page.first_slot.get_or_insert(*seq);
        if let Slot::Message(m) = slot {
            if page.messages.len() == limit {
                page.more = true;
                break;
            }
            page.messages.push(m.clone());
        }
    }
    page
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}
