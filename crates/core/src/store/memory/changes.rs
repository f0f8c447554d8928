//! Changes in the memory store, as `Store::find_message` and
//! `Store::apply_change` describe them (the DynamoDB adapter's
//! `dynamodb/changes.rs` is the same protocol with conditional writes).

use serde_json::Value;

use super::Inner;
use crate::clock::Millis;
use crate::protocol::{ChangeKind, Message, Revision};
use crate::store::{ChangeApplied, Slot};

impl Inner {
    pub(super) fn find_message(
        &self,
        room: &str,
        author: &str,
        id: &str,
        now: Millis,
    ) -> Option<Message> {
        let key = (room.to_owned(), author.to_owned(), id.to_owned());
        let (seq, expires, _) = self.markers.get(&key)?;
        if *expires <= now {
            return None;
        }
        match self.history.get(room)?.get(seq)? {
            (Slot::Message(m), exp) if *exp > now && m.change.is_none() => Some(m.clone()),
            _ => None,
        }
    }

    pub(super) fn apply_change(
        &mut self,
        room: &str,
        target: u64,
        change: &Message,
    ) -> ChangeApplied {
        let Some(c) = &change.change else {
            return ChangeApplied::Missing;
        };
        let revision = Revision {
            seq: change.seq,
            by: change.from.clone(),
            ts: change.ts,
            deleted: c.kind == ChangeKind::Delete,
        };
        let Some(slots) = self.history.get_mut(room) else {
            return ChangeApplied::Missing;
        };
        let Some((Slot::Message(m), _)) = slots.get_mut(&target) else {
            return ChangeApplied::Missing;
        };
        let deleted = m.revision.as_ref().is_some_and(|r| r.deleted);
        let outcome = match (c.kind, deleted) {
            (ChangeKind::Delete, true) => return ChangeApplied::Superseded,
            (ChangeKind::Edit, true) => ChangeApplied::Deleted,
            (ChangeKind::Edit, false) => {
                let later = m.revision.as_ref().is_none_or(|r| r.seq < change.seq);
                if later {
                    m.data = change.data.clone();
                    m.revision = Some(Box::new(revision));
                }
                self.versions
                    .entry((room.to_owned(), target))
                    .or_default()
                    .insert(change.seq);
                return if later {
                    ChangeApplied::Applied
                } else {
                    ChangeApplied::Superseded
                };
            }
            (ChangeKind::Delete, false) => {
                m.data = Value::Null;
                m.revision = Some(Box::new(revision));
                ChangeApplied::Applied
            }
        };
        // Erase: a delete erases every edit's data; an edit after a delete
        // erases its own.
        let erase: Vec<u64> = match outcome {
            ChangeApplied::Deleted => vec![change.seq],
            _ => self
                .versions
                .remove(&(room.to_owned(), target))
                .into_iter()
                .flatten()
                .collect(),
        };
        for seq in erase {
            if let Some((Slot::Message(v), _)) = slots.get_mut(&seq) {
                v.data = Value::Null;
            }
        }
        outcome
    }
}
