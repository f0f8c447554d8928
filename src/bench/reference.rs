//! The reference for "the limit": a minimal tokio-tungstenite broadcast
//! server. Every text frame goes to every other connection; nothing else
//! (no auth, no rooms, no storage, no API Gateway semantics).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

/// Serves on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener) {
    let peers: Peers = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    // Same small read buffer as the emulator, so memory is compared fairly.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let peers = peers.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel();
            peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, tx);
            let writer = tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.send(m).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(_) = m {
                    let targets: Vec<_> = peers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .filter(|(k, _)| **k != id)
                        .map(|(_, tx)| tx.clone())
                        .collect();
                    for tx in targets {
                        let _ = tx.send(m.clone());
                    }
                }
            }
            peers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            writer.abort();
        });
    }
}
