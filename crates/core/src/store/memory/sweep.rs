//! Expiry for the memory store, as DynamoDB's TTL gives the table: reads
//! already hide expired items; this deletes them, so a long emulator run
//! does not grow. Each item goes by its own expiry, as TTL does.

use super::Inner;
use crate::clock::Millis;

/// How often a write may sweep, in store time.
pub(super) const EVERY_MS: Millis = 60_000;

impl Inner {
    /// Sweeps if the last sweep is `EVERY_MS` old. Called on writes with
    /// their `now`; costs one pass over the store a minute.
    pub(super) fn sweep_if_due(&mut self, now: Millis) {
        if now.saturating_sub(self.swept_at) >= EVERY_MS {
            self.sweep(now);
            self.swept_at = now;
        }
    }

    /// Deletes every item whose expiry has passed.
    pub(super) fn sweep(&mut self, now: Millis) {
        let expired: Vec<String> = self
            .connections
            .iter()
            .filter(|(_, c)| c.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(c) = self.connections.remove(&id)
                && let Some(ids) = self.by_user.get_mut(&c.user)
            {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_user.remove(&c.user);
                }
            }
        }
        self.sweep_memberships(now);
        self.history.retain(|_, messages| {
            messages.retain(|_, (_, expires)| *expires > now);
            !messages.is_empty()
        });
        self.markers.retain(|_, (_, expires, _)| *expires > now);
        self.direct_markers.retain(|_, expires| *expires > now);
        self.revoked.retain(|_, until| *until > now);
    }

    fn sweep_memberships(&mut self, now: Millis) {
        let mut gone = Vec::new();
        for (room, members) in &mut self.rooms {
            members.retain(|id, m| {
                let live = m.expires_at > now;
                if !live {
                    gone.push((room.clone(), id.clone()));
                }
                live
            });
        }
        self.rooms.retain(|_, members| !members.is_empty());
        for (room, id) in gone {
            if let Some(rooms) = self.by_connection.get_mut(&id) {
                rooms.remove(&room);
                if rooms.is_empty() {
                    self.by_connection.remove(&id);
                }
            }
            self.index_watcher(&room, &id, false);
        }
    }

    /// Items held, of every kind (tests).
    #[cfg(test)]
    pub(super) fn items(&self) -> usize {
        self.connections.len()
            + self.by_user.values().map(|s| s.len()).sum::<usize>()
            + self.rooms.values().map(|m| m.len()).sum::<usize>()
            + self.watchers.values().map(|s| s.len()).sum::<usize>()
            + self.by_connection.values().map(|s| s.len()).sum::<usize>()
            + self.history.values().map(|h| h.len()).sum::<usize>()
            + self.markers.len()
            + self.direct_markers.len()
            + self.revoked.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::MemoryStore;
    use super::*;
    use crate::auth::{Identity, RoomRights};
    use crate::protocol::Sender;
    use crate::store::{ConnectionRecord, Membership, NewMessage, Store};

    const T: Millis = 1_900_000_000_000;

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            name: "Alice".into(),
            exp: T / 1000 + 3600,
            rooms: RoomRights::all(),
            direct: true,
        }
    }

    async fn fill(store: &MemoryStore, id: &str, at: Millis, ttl: Millis) {
        store
            .put_connection(&ConnectionRecord::new(id, &alice(), at, at + ttl))
            .await
            .unwrap();
        let m = Membership {
            room: "r".into(),
            connection_id: id.into(),
            user: "alice".into(),
            name: "Alice".into(),
            presence: true,
            joined_at: at,
            expires_at: at + ttl,
            token_exp: T / 1000 + 3600,
        };
        store.join(&m).await.unwrap();
        let msg = NewMessage {
            room: "r".into(),
            id: format!("m-{id}"),
            from: Sender {
                user: "alice".into(),
                name: "Alice".into(),
            },
            data: json!(1),
            ts: at,
            expires_at: at + ttl,
            change: None,
        };
        crate::store::sequencer::append(store, &crate::clock::ManualClock::new(at), msg, at + ttl)
            .await
            .unwrap();
        store.mark_direct("alice", id, at, at + ttl).await.unwrap();
    }

    #[tokio::test]
    async fn expired_items_are_deleted_and_live_ones_kept() {
        let store = MemoryStore::new();
        fill(&store, "old", T, 1_000).await;
        let one = store.lock().items();
        assert!(one >= 8, "every kind was stored: {one}");
        // A write a minute later sweeps what expired meanwhile.
        fill(&store, "new", T + EVERY_MS + 1, 3_600_000).await;
        assert_eq!(store.lock().items(), one, "only the new items remain");
        let now = T + EVERY_MS + 2;
        assert!(store.get_connection("new", now).await.unwrap().is_some());
        assert!(store.get_connection("old", now).await.unwrap().is_none());
        assert_eq!(store.members("r", now).await.unwrap().len(), 1);
        assert_eq!(store.seq_state("r").await.unwrap().top, 2, "seqs are kept");
    }

    #[tokio::test]
    async fn a_long_run_stays_bounded() {
        let store = MemoryStore::new();
        // Ten hours of connections that each live a minute.
        for i in 0..600 {
            fill(&store, &format!("c{i}"), T + i * 60_000, 60_000).await;
        }
        assert!(store.lock().items() <= 3 * 9, "{}", store.lock().items());
    }
}
