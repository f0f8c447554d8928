//! Per-room ordering: messages come out in seq order, each once. Later
//! messages wait behind a missing seq until it arrives, or until a join
//! reply moves the room past it. Pure state: the session emits what comes out.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// How long a gap may last before the room is joined again with `since`
/// to fetch what is missing (a lost post, a frame that could not be read).
pub(crate) const GAP_WAIT: Duration = Duration::from_secs(1);

/// One place in a room's stream.
#[derive(Debug, PartialEq)]
pub(crate) enum Item {
    /// A message, as the app receives it.
    Message(Value),
    /// A message whose frame could not be read: it keeps its place (so later
    /// ones are not held behind it) and is reported instead of delivered.
    Unreadable {
        /// The room.
        room: String,
        /// Its seq.
        seq: u64,
    },
}

#[derive(Debug, Default)]
struct Room {
    last_seq: Option<u64>,
    buffer: BTreeMap<u64, Item>,
    /// Since when messages have waited behind a missing seq.
    gap_since: Option<Instant>,
    /// The stream epoch `last_seq` counts in (empty: not known yet).
    epoch: String,
    /// Epochs this room's stream has left: a late frame of one is stale.
    left: Vec<String>,
}

/// How many left epochs a room remembers.
const LEFT_EPOCHS: usize = 4;

/// What an epoch on a frame means for a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Epoch {
    /// The room's (or the frame has none, or the room knew none yet).
    Same,
    /// A new one: the stream started again. The room's place and buffer
    /// are dropped; it now counts from 0 in the new epoch.
    Restarted,
    /// One the room left: the frame is from the old stream; drop it.
    Stale,
}

/// The rooms the app joined, each with its place in the stream.
#[derive(Debug, Default)]
pub(crate) struct Rooms(BTreeMap<String, Room>);

impl Rooms {
    /// Starts following `room` (no place yet: the join reply sets it).
    pub(crate) fn add(&mut self, room: &str) {
        self.0.entry(room.to_owned()).or_default();
    }

    /// Stops following `room` (left, or no longer granted).
    pub(crate) fn remove(&mut self, room: &str) {
        self.0.remove(room);
    }

    /// Every followed room.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The last seq delivered in `room`, the `since` of a re-join.
    pub(crate) fn last_seq(&self, room: &str) -> Option<u64> {
        self.0.get(room).and_then(|r| r.last_seq)
    }

    /// The epoch the room counts in, for a re-join (`None` if not known).
    pub(crate) fn epoch(&self, room: &str) -> Option<&str> {
        self.0
            .get(room)
            .map(|r| r.epoch.as_str())
            .filter(|e| !e.is_empty())
    }

    /// Checks a frame's `epoch` against the room's, adopting it if the
    /// room knew none and starting over if it is new.
    pub(crate) fn check_epoch(&mut self, room_name: &str, epoch: &str) -> Epoch {
        let Some(room) = self.0.get_mut(room_name) else {
            return Epoch::Same;
        };
        if epoch == room.epoch {
            return Epoch::Same;
        }
        if room.left.iter().any(|e| e == epoch) {
            return Epoch::Stale;
        }
        if room.epoch.is_empty() && !epoch.is_empty() {
            room.epoch = epoch.to_owned();
            return Epoch::Same;
        }
        let old = std::mem::replace(&mut room.epoch, epoch.to_owned());
        if !old.is_empty() {
            room.left.push(old);
            if room.left.len() > LEFT_EPOCHS {
                room.left.remove(0);
            }
        }
        room.last_seq = Some(0);
        room.buffer.clear();
        room.gap_since = None;
        Epoch::Restarted
    }

    /// Takes `item` at `seq`; returns what can now be delivered, in order.
    /// Old, duplicate and unfollowed-room messages are dropped.
    pub(crate) fn offer(&mut self, room_name: &str, seq: u64, item: Item) -> Vec<Item> {
        let Some(room) = self.0.get_mut(room_name) else {
            return Vec::new();
        };
        if room.last_seq.is_some_and(|last| seq <= last) || room.buffer.contains_key(&seq) {
            return Vec::new();
        }
        room.buffer.insert(seq, item);
        if room.last_seq.is_some() {
            return self.drain(room_name);
        }
        Vec::new()
    }

    /// A join reply at `seq`. The first one sets the room's place (buffered
    /// older messages are dropped); later ones, once no more missed messages
    /// are coming, move the room past any hole up to `seq`.
    pub(crate) fn joined(&mut self, room_name: &str, seq: u64, complete: bool) -> Vec<Item> {
        let room = self.0.entry(room_name.to_owned()).or_default();
        if room.last_seq.is_none() {
            room.last_seq = Some(seq);
            room.buffer.retain(|s, _| *s > seq);
            return self.drain(room_name);
        }
        if complete {
            return self.skip_to(room_name, seq);
        }
        Vec::new()
    }

    /// Whether the room has no place yet (its first join reply is pending).
    pub(crate) fn is_new(&self, room: &str) -> bool {
        self.0.get(room).is_none_or(|r| r.last_seq.is_none())
    }

    /// Rooms whose messages have waited behind a missing seq for longer
    /// than [`GAP_WAIT`]: join them again with `since`.
    pub(crate) fn gaps_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (name, room) in &mut self.0 {
            if room.buffer.is_empty() || room.last_seq.is_none() {
                room.gap_since = None;
                continue;
            }
            match room.gap_since {
                None => room.gap_since = Some(now),
                Some(t) if now.duration_since(t) >= GAP_WAIT => {
                    room.gap_since = Some(now);
                    due.push(name.clone());
                }
                Some(_) => {}
            }
        }
        due
    }

    fn drain(&mut self, room_name: &str) -> Vec<Item> {
        let mut ready = Vec::new();
        if let Some(room) = self.0.get_mut(room_name)
            && let Some(mut last) = room.last_seq
        {
            while let Some(m) = room.buffer.remove(&(last + 1)) {
                last += 1;
                ready.push(m);
            }
            room.last_seq = Some(last);
        }
        ready
    }

    /// Delivers buffered messages up to `seq`, skipping holes, and moves on.
    fn skip_to(&mut self, room_name: &str, seq: u64) -> Vec<Item> {
        let mut ready = Vec::new();
        if let Some(room) = self.0.get_mut(room_name) {
            let keep = room.buffer.split_off(&(seq + 1));
            let last = room.last_seq.unwrap_or(0);
            for (s, m) in std::mem::replace(&mut room.buffer, keep) {
                if s > last {
                    ready.push(m);
                }
            }
            room.last_seq = Some(last.max(seq));
        }
        ready.extend(self.drain(room_name));
        ready
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(seq: u64) -> Item {
        Item::Message(json!({"seq": seq}))
    }

    #[test]
    fn messages_wait_behind_a_gap_and_come_out_in_order_once() {
        let mut rooms = Rooms::default();
        rooms.add("r");
        assert!(rooms.offer("r", 2, m(2)).is_empty(), "no place yet");
        assert_eq!(rooms.joined("r", 0, true), vec![]);
        assert_eq!(rooms.offer("r", 1, m(1)), vec![m(1), m(2)]);
        assert!(rooms.offer("r", 2, m(2)).is_empty(), "duplicate");
        assert!(rooms.offer("r", 4, m(4)).is_empty(), "held behind 3");
        assert_eq!(
            rooms.joined("r", 3, true),
            vec![m(4)],
            "a join moves past the hole"
        );
        assert_eq!(rooms.last_seq("r"), Some(4));
        assert!(rooms.offer("other", 1, m(1)).is_empty(), "not followed");
    }

    /// A stream that started again (a new epoch) counts from 0: its seqs
    /// 1, 2, … are delivered although the old stream's were; a late frame
    /// of the old stream is stale, and does not flip the room back.
    #[test]
    fn a_new_epoch_starts_the_room_over_and_the_old_one_is_stale() {
        let mut rooms = Rooms::default();
        rooms.add("r");
        assert_eq!(rooms.epoch("r"), None);
        assert_eq!(rooms.check_epoch("r", "aaaa"), Epoch::Same, "adopted");
        assert_eq!(rooms.epoch("r"), Some("aaaa"));
        rooms.joined("r", 0, true);
        assert_eq!(rooms.offer("r", 1, m(1)), vec![m(1)]);
        assert_eq!(rooms.offer("r", 2, m(2)), vec![m(2)]);
        rooms.offer("r", 4, m(4));
        assert_eq!(rooms.check_epoch("r", "bbbb"), Epoch::Restarted);
        assert_eq!(rooms.last_seq("r"), Some(0));
        assert_eq!(rooms.offer("r", 1, m(1)), vec![m(1)], "seq 1 again");
        assert_eq!(rooms.check_epoch("r", "aaaa"), Epoch::Stale);
        assert_eq!(rooms.epoch("r"), Some("bbbb"));
        assert_eq!(
            rooms.check_epoch("r", ""),
            Epoch::Restarted,
            "no stream any more"
        );
        assert_eq!(rooms.epoch("r"), None);
        assert_eq!(
            rooms.check_epoch("other", "cccc"),
            Epoch::Same,
            "not followed"
        );
    }

    #[test]
    fn a_gap_is_due_for_a_rejoin_only_after_the_wait() {
        let mut rooms = Rooms::default();
        rooms.add("r");
        rooms.joined("r", 0, true);
        rooms.offer("r", 2, m(2));
        let t0 = Instant::now();
        assert!(rooms.gaps_due(t0).is_empty());
        assert!(rooms.gaps_due(t0 + GAP_WAIT / 2).is_empty());
        assert_eq!(rooms.gaps_due(t0 + GAP_WAIT), vec!["r".to_owned()]);
    }
}
