//! An in-memory `Dispatch` for tests: records shards, can refuse them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Dispatch, DispatchError, Shard};

/// Records every shard; refuses the next `fail_next` dispatches.
#[derive(Debug, Default)]
pub struct MemoryDispatch {
    queue: Mutex<VecDeque<Shard>>,
    fail_next: AtomicUsize,
    dispatched: AtomicUsize,
}

impl MemoryDispatch {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Shard>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next `n` dispatches fail.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Takes the oldest queued shard.
    pub fn pop(&self) -> Option<Shard> {
        self.lock().pop_front()
    }

    /// Shards queued and not yet taken.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Shards accepted in total.
    pub fn dispatched(&self) -> usize {
        self.dispatched.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Dispatch for MemoryDispatch {
    async fn dispatch(&self, shard: &Shard) -> Result<(), DispatchError> {
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(DispatchError::Unavailable("refused by the test".into()));
        }
        let size = shard.event_size();
        if size > super::EVENT_LIMIT {
            return Err(DispatchError::TooLarge {
                size,
                limit: super::EVENT_LIMIT,
            });
        }
        self.dispatched.fetch_add(1, Ordering::SeqCst);
        self.lock().push_back(shard.clone());
        Ok(())
    }
}
