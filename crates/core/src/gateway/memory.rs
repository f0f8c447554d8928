//! An in-memory `Gateway` for unit tests: records frames, simulates gone,
//! failing and hanging connections.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{ConnectionInfo, Gateway, GatewayError};

#[derive(Default)]
struct Inner {
    frames: HashMap<String, Vec<Vec<u8>>>,
    gone: HashSet<String>,
    failing: HashMap<String, GatewayError>,
    hanging: HashSet<String>,
    deleted: Vec<String>,
    /// Every accepted post's connection, in order.
    order: Vec<String>,
}

/// Records every post; nothing leaves the process.
#[derive(Default)]
pub struct MemoryGateway {
    inner: Mutex<Inner>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl MemoryGateway {
    /// A gateway where every connection exists.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes posts to `id` answer `Gone`.
    pub fn mark_gone(&self, id: &str) {
        self.lock().gone.insert(id.to_owned());
    }

    /// Makes posts to `id` fail with `error`.
    pub fn fail_with(&self, id: &str, error: GatewayError) {
        self.lock().failing.insert(id.to_owned(), error);
    }

    /// Makes posts to `id` never answer.
    pub fn hang(&self, id: &str) {
        self.lock().hanging.insert(id.to_owned());
    }

    /// Frames sent to `id`, as text.
    pub fn texts(&self, id: &str) -> Vec<String> {
        self.lock()
            .frames
            .get(id)
            .map(|f| {
                f.iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Frames sent to `id`, parsed as JSON, and forgets them.
    pub fn take(&self, id: &str) -> Vec<Value> {
        self.lock()
            .frames
            .remove(id)
            .unwrap_or_default()
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }

    /// Frames sent to `id` that `keep` picks, parsed as JSON, and forgets
    /// those (the others stay).
    pub fn take_where(&self, id: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut g = self.lock();
        let Some(frames) = g.frames.get_mut(id) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        frames.retain(|b| match serde_json::from_slice::<Value>(b) {
            Ok(v) if keep(&v) => {
                taken.push(v);
                false
            }
            _ => true,
        });
        taken
    }

    /// The connections of every accepted post, in the order accepted.
    pub fn posted_order(&self) -> Vec<String> {
        self.lock().order.clone()
    }

    /// Connections closed through `delete`, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.lock().deleted.clone()
    }

    /// The most posts that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Gateway for MemoryGateway {
    async fn post(&self, id: &str, payload: &[u8]) -> Result<(), GatewayError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Yield once so concurrent posts really overlap.
        tokio::task::yield_now().await;
        let hang = self.lock().hanging.contains(id);
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let result = {
            let mut g = self.lock();
            if g.gone.contains(id) {
                Err(GatewayError::Gone)
            } else if let Some(e) = g.failing.get(id) {
                Err(e.clone())
            } else {
                g.frames
                    .entry(id.to_owned())
                    .or_default()
                    .push(payload.to_vec());
                g.order.push(id.to_owned());
                Ok(())
            }
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn delete(&self, id: &str) -> Result<(), GatewayError> {
        let mut g = self.lock();
        if !g.gone.insert(id.to_owned()) {
            return Err(GatewayError::Gone);
        }
        g.deleted.push(id.to_owned());
        Ok(())
    }

    async fn info(&self, id: &str) -> Result<ConnectionInfo, GatewayError> {
        if self.lock().gone.contains(id) {
            return Err(GatewayError::Gone);
        }
        Ok(ConnectionInfo {
            connected_at_ms: None,
            source_ip: None,
            user_agent: None,
            last_active_at_ms: None,
        })
    }
}

impl std::fmt::Debug for MemoryGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGateway").finish_non_exhaustive()
    }
}
