//! The connection registry: every open socket, its outbound queue and what
//! later events need to know about it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Why the server side closes a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// What API Gateway learns of a connection at its handshake; every event
/// of the connection carries it.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// The connection id.
    pub(crate) id: String,
    /// When the handshake arrived, ms since the epoch.
    pub(crate) connected_at_ms: i64,
    /// The client's address.
    pub(crate) source_ip: String,
    /// Its `User-Agent`.
    pub(crate) user_agent: String,
    /// The `Host` it connected to: `requestContext.domainName`.
    pub(crate) domain: String,
}

/// One open connection.
pub(crate) struct Connection {
    pub(crate) peer: Peer,
    pub(crate) tx: mpsc::Sender<Message>,
    last_active_ms: AtomicI64,
    /// Data frames received and written, for the inspector.
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    /// `requestContext.authorizer` for later events: principalId + context.
    pub(crate) authorizer: Value,
    close: watch::Sender<Option<CloseReason>>,
}

impl Connection {
    pub(crate) fn new(peer: Peer, tx: mpsc::Sender<Message>, authorizer: Value) -> Self {
        Self {
            last_active_ms: AtomicI64::new(peer.connected_at_ms),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            peer,
            tx,
            authorizer,
            close: watch::Sender::new(None),
        }
    }

    /// Records a data frame received.
    pub(crate) fn received(&self, now_ms: i64) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.last_active_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Records a data frame written to the client.
    pub(crate) fn wrote(&self, now_ms: i64) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.last_active_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// (frames received, frames written, frames queued to be written).
    pub(crate) fn counts(&self) -> (u64, u64, usize) {
        (
            self.frames_in.load(Ordering::Relaxed),
            self.frames_out.load(Ordering::Relaxed),
            self.tx.max_capacity() - self.tx.capacity(),
        )
    }

    pub(crate) fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Asks the socket task to close with `reason`. The first request wins.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        self.close.send_if_modified(|slot| {
            if slot.is_some() {
                return false;
            }
            *slot = Some(reason);
            true
        });
    }

    /// Waits for a close request.
    pub(crate) async fn close_requested(&self) -> CloseReason {
        let mut rx = self.close.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_else(CloseReason::going_away),
            // The sender lives in `self`, so this cannot end; if it did,
            // closing is the safe answer.
            Err(_) => CloseReason::going_away(),
        }
    }
}

impl CloseReason {
    /// 1000 with no reason, as a DELETE on `@connections` closes.
    pub(crate) fn normal() -> Self {
        Self {
            code: 1000,
            reason: String::new(),
        }
    }

    /// 1006: the socket is dropped without a close frame, as a network
    /// failure drops it (an injected fault).
    pub(crate) fn abnormal() -> Self {
        Self {
            code: 1006,
            reason: "Connection was closed abnormally".into(),
        }
    }

    /// 1001, as on shutdown, idle timeout and the maximum duration.
    pub(crate) fn going_away() -> Self {
        Self {
            code: 1001,
            reason: "Going away".into(),
        }
    }
}

/// Why a post to a connection was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PostError {
    /// No such connection, or it is closing: the caller answers 410 Gone
    /// and forgets the connection.
    #[error("connection is gone")]
    Gone,
    /// Its outbound queue is full (the client is not reading): the frame
    /// was dropped; the caller answers 429 and the client recovers by resume.
    #[error("the client is not reading fast enough")]
    Throttled,
}

/// All open connections by id.
#[derive(Default)]
pub(crate) struct Connections {
    map: RwLock<HashMap<String, Arc<Connection>>>,
}

impl Connections {
    pub(crate) fn insert(&self, c: Arc<Connection>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.peer.id.clone(), c);
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Connection>> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Ends a connection now, as DELETE `@connections` does: it is gone for
    /// every later call at once, while its socket closes in the background
    /// (close frame if the client takes it, TCP close after a deadline).
    /// False if it was not registered.
    pub(crate) fn close(&self, id: &str, reason: CloseReason) -> bool {
        match self.remove(id) {
            Some(c) => {
                c.request_close(reason);
                true
            }
            None => false,
        }
    }

    /// Queues `payload` for connection `id`: a text frame when it is UTF-8,
    /// else binary. Never waits: a full queue is the client not reading.
    pub(crate) fn post(&self, id: &str, payload: &[u8]) -> Result<(), PostError> {
        let conn = self.get(id).ok_or(PostError::Gone)?;
        let frame = match std::str::from_utf8(payload) {
            Ok(text) => Message::text(text.to_owned()),
            Err(_) => Message::binary(payload.to_vec()),
        };
        conn.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PostError::Throttled,
            mpsc::error::TrySendError::Closed(_) => PostError::Gone,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A connection id shaped like API Gateway's: 16 base64 characters ending
/// in `=` (URL-safe alphabet, so ids survive unencoded in paths too).
pub(crate) fn new_connection_id() -> String {
    use base64::Engine;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::URL_SAFE.encode(&bytes[..11])
}
