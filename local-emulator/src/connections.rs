//! The connection registry: every open socket, its outbound queue and what
//! later events need to know about it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// One open connection.
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) tx: mpsc::Sender<Message>,
    pub(crate) connected_at_ms: i64,
    last_active_ms: AtomicI64,
    pub(crate) source_ip: String,
    pub(crate) user_agent: String,
    /// `requestContext.authorizer` for later events: principalId + context.
    pub(crate) authorizer: Value,
    close: watch::Sender<Option<CloseReason>>,
}

impl Connection {
    pub(crate) fn new(
        id: String,
        tx: mpsc::Sender<Message>,
        connected_at_ms: i64,
        source_ip: String,
        user_agent: String,
        authorizer: Value,
    ) -> Self {
        Self {
            id,
            tx,
            connected_at_ms,
            last_active_ms: AtomicI64::new(connected_at_ms),
            source_ip,
            user_agent,
            authorizer,
            close: watch::Sender::new(None),
        }
    }

    /// Records data-frame activity (either direction).
    pub(crate) fn touch(&self, now_ms: i64) {
        self.last_active_ms.fetch_max(now_ms, Ordering::Relaxed);
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
    /// 1001, as on shutdown, idle timeout and the maximum duration.
    pub(crate) fn going_away() -> Self {
        Self {
            code: 1001,
            reason: "Going away".into(),
        }
    }
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
            .insert(c.id.clone(), c);
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
