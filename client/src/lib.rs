//! `roomcast-client`: a reconnecting Roomcast client.
//!
//! The same guarantees as the browser library (`web/roomcast.js`):
//! exponential backoff with full jitter; rooms re-joined after a reconnect
//! with `since` = the last seq seen; room messages delivered in seq order,
//! each (room, seq) once; sends kept in an outbox until acked and resent
//! with the same id (the server makes that exactly-once). A handshake
//! refused with 401 or 403 stops the client instead of retrying.
//!
//! ```no_run
//! # async fn demo() -> Result<(), roomcast_client::ClientError> {
//! use roomcast_client::{Client, ClientConfig, Event};
//! let (client, mut events) = Client::spawn(ClientConfig::new("ws://127.0.0.1:3001/prod", "TOKEN"));
//! client.join("lobby").await?;
//! client.send("lobby", serde_json::json!({"text": "hi"})).await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(m) = event { println!("{}", m); }
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod order;
mod session;

use std::time::Duration;

use roomcast_protocol::ServerFrame;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use backoff::backoff_delay;

/// Why an operation failed. Each variant says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the token (HTTP 401/403). Get a new token; the
    /// client has stopped.
    #[error("unauthorized: the server refused the handshake with {0}")]
    Unauthorized(u16),
    /// The server answered with an error frame (its code and message).
    #[error("server error {code}: {message}")]
    Server {
        /// The protocol error code.
        code: String,
        /// The explanation.
        message: String,
    },
    /// The outbox is full: too many sends await their acks. Retry later.
    #[error("outbox full ({0} sends waiting)")]
    OutboxFull(usize),
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// An ephemeral send while the connection is down: ephemeral data is
    /// never queued (it would be stale when it arrived). Send fresh data
    /// once `State::Open` is reported.
    #[error("not connected; ephemeral sends are not queued")]
    NotConnected,
    /// The team's backend closed this connection and asked the client not
    /// to reconnect (a `closing` frame with `reconnect: false`: kicked or
    /// revoked). The client stops; reconnecting is the app's decision.
    #[error("closed by the server ({code}): {reason}")]
    Kicked {
        /// The backend's code (4000–4999).
        code: u16,
        /// The backend's reason, for the user.
        reason: String,
    },
    /// The server closed with 1009: a frame or message was too big.
    #[error("message too big (close 1009)")]
    MessageTooBig,
    /// A server frame could not be understood. Reported, then ignored.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Connection states, as reported by [`Event::State`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Opening the socket.
    Connecting,
    /// Connected and welcomed.
    Open {
        /// The server's connection id.
        connection_id: String,
    },
    /// Lost; the next attempt is after `retry_in`.
    Reconnecting {
        /// Why it was lost.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// Stopped for good.
    Closed {
        /// Why.
        reason: String,
    },
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The connection state changed.
    State(State),
    /// A room message, in seq order, each once.
    Message(Value),
    /// A presence, typing, direct, ephemeral or history frame, as received.
    Frame(ServerFrame),
    /// A room was (re-)joined; `missed` messages were recovered.
    Joined {
        /// The room.
        room: String,
        /// Messages recovered by the resume.
        missed: usize,
        /// Some messages were past retention.
        truncated: bool,
    },
    /// The room's stream started again (a new epoch: the server lost the
    /// room's stream, or it was restored): drop what is shown of the room;
    /// its messages follow again from seq 1.
    Restarted {
        /// The room.
        room: String,
        /// The new stream's epoch (empty while it has no message).
        epoch: String,
    },
    /// A problem that did not stop the client.
    Error(ClientError),
}

/// Settings, with documented defaults.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The WebSocket URL (the token is added as `?token=`).
    pub url: String,
    /// The JWT.
    pub token: String,
    /// First backoff ceiling. Default 500 ms.
    pub backoff_base: Duration,
    /// Largest backoff. Default 30 s.
    pub backoff_cap: Duration,
    /// A connection this old resets the backoff. Default 30 s.
    pub stable_after: Duration,
    /// Heartbeat when idle this long. Default 5 min.
    pub heartbeat: Duration,
    /// Sends waiting for acks before `OutboxFull`. Default 1000.
    pub outbox_limit: usize,
}

impl ClientConfig {
    /// Defaults for `url` and `token`.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            heartbeat: Duration::from_secs(300),
            outbox_limit: 1000,
        }
    }
}

/// An acknowledgement of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The client message id.
    pub id: String,
    /// The room seq it got.
    pub seq: u64,
    /// It had been stored before (a retry).
    pub duplicate: bool,
}

pub(crate) enum Command {
    Join(String, oneshot::Sender<Result<(), ClientError>>),
    Send {
        room: String,
        id: String,
        data: Value,
        reply: oneshot::Sender<Result<Ack, ClientError>>,
    },
    Ephemeral {
        room: String,
        data: Value,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Close,
}

/// A handle to the client task. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl Client {
    /// Starts the client task; events arrive on the returned receiver.
    pub fn spawn(config: ClientConfig) -> (Self, mpsc::Receiver<Event>) {
        let (commands, rx) = mpsc::channel(256);
        let (events_tx, events) = mpsc::channel(4096);
        tokio::spawn(session::run(config, rx, events_tx));
        (Self { commands }, events)
    }

    /// Joins a room (and re-joins it after every reconnect). Returns once
    /// the request is queued; `Event::Joined` reports the join.
    pub async fn join(&self, room: &str) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Join(room.to_owned(), tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Sends to a room; resolves with the ack (exactly once across reconnects).
    pub async fn send(&self, room: &str, data: Value) -> Result<Ack, ClientError> {
        self.send_with_id(room, &uuid::Uuid::new_v4().simple().to_string(), data)
            .await
    }

    /// Sends with a chosen id (retries of the same id are deduplicated).
    pub async fn send_with_id(
        &self,
        room: &str,
        id: &str,
        data: Value,
    ) -> Result<Ack, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                room: room.to_owned(),
                id: id.to_owned(),
                data,
                reply,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Sends ephemeral data to a room (`"ephemeral": true`): fan-out only,
    /// no seq, not stored, not resumed, not retried. For cursors, game
    /// state and other high-rate data where only the latest value matters.
    /// Resolves once written to the socket; other members receive it as
    /// `Event::Frame(ServerFrame::Ephemeral { .. })`. Fails with
    /// `NotConnected` while the connection is down.
    pub async fn send_ephemeral(&self, room: &str, data: Value) -> Result<(), ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Ephemeral {
                room: room.to_owned(),
                data,
                reply,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Closes the client.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}
