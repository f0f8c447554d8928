//! Sharded fan-out: the [`Dispatch`] port and the [`Shard`] it carries.
//!
//! A room too large to fan out inline is handed, page by page of its member
//! Query, to the `fanout` function, invoked asynchronously. A shard names
//! the connections to post to; a shard with `rest` also carries on reading
//! the room from a cursor, dispatching a shard per page. Adapters: Lambda's
//! asynchronous Invoke (roomcast-aws, also against the emulator's Invoke
//! API), and `memory::MemoryDispatch` for tests.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;

#[cfg(any(test, feature = "test-util"))]
pub mod memory;

/// Lambda's limit on an asynchronous invocation's payload. Shards are cut
/// to fit under it with room to spare.
pub const EVENT_LIMIT: usize = 256 * 1024;

/// One slice of a fan-out: everything the `fanout` function needs, so it
/// reads nothing to deliver it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shard {
    /// The room.
    pub room: String,
    /// The message's seq (for logs; clients dedup by room and seq).
    pub seq: u64,
    /// The frame to post, as JSON text.
    pub frame: String,
    /// Connections to post to.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Read the rest of the room from here, dispatching a shard per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<Rest>,
    /// A connection never posted to (the sender, who has its ack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Which attempt at these posts this is (0 first); failed posts are
    /// re-queued with attempt + 1 until `FanoutConfig::attempts`.
    #[serde(default)]
    pub attempt: u32,
    /// How many times this fan-out has re-queued a remainder for lack of
    /// time; a bound on it stops a fan-out that makes no progress.
    #[serde(default)]
    pub hops: u32,
    /// When the message was stored (ms since the epoch).
    pub stored_at: Millis,
}

/// Where to go on reading a room's members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rest {
    /// The member Query's cursor (a connection id); `None`: from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Shard {
    /// The shard's size as an event, in bytes.
    pub fn event_size(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// A shard of the same message for other targets.
    pub fn with_targets(&self, targets: Vec<String>) -> Self {
        Self {
            targets,
            rest: None,
            ..self.clone()
        }
    }
}

/// Why a shard could not be handed over. Each variant says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The shard is over the invocation payload limit: cut it smaller.
    #[error("shard of {size} bytes is over the {limit} byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The queue refused or failed beyond its retries: keep the shard's
    /// work (deliver it, or fail so the invocation is retried); never drop it.
    #[error("dispatch failed: {0}")]
    Unavailable(String),
}

/// The port: hands a shard to the `fanout` function, asynchronously.
#[async_trait]
pub trait Dispatch: Send + Sync {
    /// Queues `shard`; returns once it is accepted, not delivered.
    async fn dispatch(&self, shard: &Shard) -> Result<(), DispatchError>;
}
