//! The timeline: what the emulator does (frames in and out, invocations,
//! `@connections` and Invoke API calls, connects and disconnects, events,
//! faults), recorded by every service and read by the inspector.
//!
//! A bounded ring of JSON entries (memory stays flat on a long run).
//! High-rate entries (frames, posts) are recorded only while an inspector
//! is watching, so with none open the hot path pays one atomic read;
//! invocations, connects, disconnects and faults are always kept.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::broadcast;

pub(crate) mod redact;

/// Entries the ring keeps by default.
pub(crate) const DEFAULT_TIMELINE: usize = 2000;

/// The emulator's timeline.
#[derive(Debug)]
pub(crate) struct Timeline {
    cap: usize,
    next: AtomicU64,
    ring: Mutex<VecDeque<Arc<str>>>,
    live: broadcast::Sender<Arc<str>>,
    /// The secrets taken out of kept events, by request id, for replay:
    /// in memory only, never served (`redact`).
    secrets: Mutex<VecDeque<(String, Vec<redact::Secret>)>>,
}

impl Timeline {
    /// A timeline keeping the last `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            cap: cap.max(1),
            next: AtomicU64::new(1),
            ring: Mutex::new(VecDeque::with_capacity(cap.clamp(1, 4096))),
            live,
            secrets: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps what was taken out of request `request_id`'s event.
    pub(crate) fn keep_secrets(&self, request_id: &str, secrets: Vec<redact::Secret>) {
        let mut kept = self
            .secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= self.cap {
            kept.pop_front();
        }
        kept.push_back((request_id.to_owned(), secrets));
    }

    /// Puts back the secrets of the event whose request id `event` carries,
    /// where it still holds the marker (a replay of a kept event).
    pub(crate) fn restore_secrets(&self, event: &mut Value) {
        let Some(id) = event["requestContext"]["requestId"]
            .as_str()
            .map(str::to_owned)
        else {
            return;
        };
        let kept = self
            .secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, secrets)) = kept.iter().rev().find(|(r, _)| *r == id) {
            redact::restore(event, secrets);
        }
    }

    /// Whether an inspector is watching (then frames and posts are kept).
    pub(crate) fn watching(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// Records an entry: `fields` (an object) with `id`, `ts` and `kind`.
    pub(crate) fn record(&self, kind: &str, now_ms: i64, mut fields: Value) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Value::Object(m) = &mut fields {
            m.insert("id".into(), id.into());
            m.insert("ts".into(), now_ms.into());
            m.insert("kind".into(), kind.into());
        }
        let line: Arc<str> = Arc::from(fields.to_string());
        {
            let mut ring = self.lock();
            if ring.len() >= self.cap {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        // Nobody watching is fine.
        let _ = self.live.send(line);
    }

    /// Records an entry stamped with the wall clock now (for places with
    /// no emulator clock at hand).
    pub(crate) fn record_now(&self, kind: &str, fields: Value) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.record(kind, now_ms, fields);
    }

    /// The entries kept, oldest first, as a JSON array.
    pub(crate) fn snapshot(&self) -> String {
        let ring = self.lock();
        let mut out = String::from("[");
        for (i, e) in ring.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(e);
        }
        out.push(']');
        out
    }

    /// How many entries are kept now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A live reader.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.live.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<str>>> {
        // A panic while holding it cannot leave the ring half-written.
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn excerpt(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_ring_keeps_the_last_entries_in_order() {
        let t = Timeline::new(3);
        for i in 0..5 {
            t.record("x", i, json!({"n": i}));
        }
        let v: Value = serde_json::from_str(&t.snapshot()).unwrap();
        let ns: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, vec![2, 3, 4]);
        assert_eq!(v[2]["kind"], "x");
        assert_eq!(v[2]["id"], 5);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn watching_follows_live_readers_and_excerpts_cut_at_characters() {
        let t = Timeline::new(10);
        assert!(!t.watching());
        let rx = t.subscribe();
        assert!(t.watching());
        drop(rx);
        assert!(!t.watching());
        assert_eq!(excerpt("héllo", 2), "h");
        assert_eq!(excerpt("ok", 10), "ok");
    }
}
