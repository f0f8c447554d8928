//! The events port: what happened, told to the team's backend.
//!
//! The domain states what happened ([`Event`]); an adapter decides where it
//! goes (EventBridge in AWS and in the emulator, nowhere when the stack has
//! no bus). Routes record events into the invocation's [`Outbox`], which
//! hands them to the adapter in one batch; recording is free when events
//! are off (the event is never even built).
//!
//! Every event's `detail` carries `version` ([`SCHEMA_VERSION`]); fields
//! are only ever added within a version. docs/events.md documents each
//! detail-type and its fields.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

mod detail;

pub use detail::{
    ConnectionClosed, ConnectionOpened, DataOmitted, DirectSent, MessageChanged, MessagePublished,
    MessageStored, Origin, PresenceChange, PresenceChanged, Rejected, RoomJoined, RoomLeft,
    RoomLeftReason,
};

/// Every detail-type, as [`Event::detail_type`] names them.
pub const DETAIL_TYPES: [&str; 11] = [
    "Connection Opened",
    "Connection Closed",
    "Room Joined",
    "Room Left",
    "Presence Changed",
    "Message Stored",
    "Direct Sent",
    "Message Published",
    "Request Rejected",
    "Message Updated",
    "Message Deleted",
];

/// The version of every detail schema. Raised only for a change that could
/// break a consumer (a field removed, renamed or retyped).
pub const SCHEMA_VERSION: u32 = 1;

/// Something that happened, for the team's backend.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A connection was accepted (`$connect` succeeded).
    ConnectionOpened(ConnectionOpened),
    /// A connection's state was removed: `$disconnect`, or found gone.
    ConnectionClosed(ConnectionClosed),
    /// A connection joined a room (first time; not a re-join).
    RoomJoined(RoomJoined),
    /// A connection left a room.
    RoomLeft(RoomLeft),
    /// A user's first device arrived in a room or their last one left,
    /// in rooms within `PresenceMax`.
    PresenceChanged(PresenceChanged),
    /// A message was stored in a room's history with a seq.
    MessageStored(MessageStored),
    /// A client sent a direct message to a user.
    DirectSent(DirectSent),
    /// A backend published to a room or a user.
    MessagePublished(MessagePublished),
    /// A client's frame or token was refused in a way worth alerting on.
    Rejected(Rejected),
    /// A message was edited or deleted: a change stored in the room's
    /// stream (`Message Updated`, `Message Deleted`).
    MessageChanged(MessageChanged),
}

impl Event {
    /// The `detail-type`: stable names, documented in docs/events.md.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::ConnectionOpened(_) => "Connection Opened",
            Self::ConnectionClosed(_) => "Connection Closed",
            Self::RoomJoined(_) => "Room Joined",
            Self::RoomLeft(_) => "Room Left",
            Self::PresenceChanged(_) => "Presence Changed",
            Self::MessageStored(_) => "Message Stored",
            Self::DirectSent(_) => "Direct Sent",
            Self::MessagePublished(_) => "Message Published",
            Self::Rejected(_) => "Request Rejected",
            Self::MessageChanged(d) => match d.kind {
                crate::protocol::ChangeKind::Edit => "Message Updated",
                crate::protocol::ChangeKind::Delete => "Message Deleted",
            },
        }
    }

    /// The `detail` as JSON.
    pub fn detail(&self) -> Value {
        match self {
            Self::ConnectionOpened(d) => versioned(d),
            Self::ConnectionClosed(d) => versioned(d),
            Self::RoomJoined(d) => versioned(d),
            Self::RoomLeft(d) => versioned(d),
            Self::PresenceChanged(d) => versioned(d),
            Self::MessageStored(d) => versioned(d),
            Self::DirectSent(d) => versioned(d),
            Self::MessagePublished(d) => versioned(d),
            Self::Rejected(d) => versioned(d),
            Self::MessageChanged(d) => versioned(d),
        }
    }

    /// What identifies this event in a log line: `room#seq` for stored
    /// messages, else the connection, else the user or room.
    pub fn key(&self) -> String {
        match self {
            Self::ConnectionOpened(d) => d.connection_id.clone(),
            Self::ConnectionClosed(d) => d.connection_id.clone(),
            Self::RoomJoined(d) => format!("{}/{}", d.room, d.connection_id),
            Self::RoomLeft(d) => format!("{}/{}", d.room, d.connection_id),
            Self::PresenceChanged(d) => format!("{}/{}", d.room, d.user),
            Self::MessageStored(d) => format!("{}#{}", d.room, d.seq),
            Self::MessageChanged(d) => format!("{}#{}", d.room, d.seq),
            Self::DirectSent(d) => format!("{}:{}", d.from.user, d.id),
            Self::MessagePublished(d) => d.id.clone(),
            Self::Rejected(d) => d
                .connection_id
                .clone()
                .or_else(|| d.user.clone())
                .unwrap_or_default(),
        }
    }

    /// Drops the client's `data` (an entry too large for EventBridge) and
    /// says why. Events without data are unchanged.
    pub fn without_data(&mut self, why: DataOmitted) {
        let (data, omitted) = match self {
            Self::MessageStored(d) => (&mut d.data, &mut d.data_omitted),
            Self::MessageChanged(d) => (&mut d.data, &mut d.data_omitted),
            Self::DirectSent(d) => (&mut d.data, &mut d.data_omitted),
            Self::MessagePublished(d) => (&mut d.data, &mut d.data_omitted),
            _ => return,
        };
        if data.take().is_some() {
            *omitted = Some(why);
        }
    }
}

/// `detail` with `version` in front.
fn versioned<T: Serialize>(detail: &T) -> Value {
    #[derive(Serialize)]
    struct Versioned<'a, T> {
        version: u32,
        #[serde(flatten)]
        detail: &'a T,
    }
    // Plain structs of strings, numbers and JSON values cannot fail.
    serde_json::to_value(Versioned {
        version: SCHEMA_VERSION,
        detail,
    })
    .unwrap_or(Value::Null)
}

/// Where events go. An adapter never fails the caller: it retries what it
/// can within the invocation's time, then counts and logs what it could not
/// deliver.
#[async_trait]
pub trait Events: Send + Sync {
    /// Delivers one invocation's events, in order, giving up on retries at
    /// `deadline` (the invocation's end, when known; else the adapter's own
    /// bound).
    async fn put(&self, events: Vec<Event>, deadline: Option<Instant>);
}

/// One invocation's events, delivered together in one [`Events::put`].
///
/// Routes call [`Outbox::record`]; whoever ends the invocation calls
/// [`Outbox::flush`] (a route that wants the call to overlap its fan-out
/// flushes earlier, after the sender's ack). With no adapter, recording
/// does nothing and builds nothing.
pub struct Outbox {
    sink: Option<Arc<dyn Events>>,
    include_data: bool,
    deadline: Option<Instant>,
    pending: Mutex<Vec<Event>>,
}

impl Outbox {
    /// An outbox for `sink`; `include_data: false` strips clients' `data`
    /// from every event (the stack keeps message contents out of events).
    pub fn new(sink: Option<Arc<dyn Events>>, include_data: bool) -> Self {
        Self {
            sink,
            include_data,
            deadline: None,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Bounds the adapter's retries by the invocation's deadline.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// An outbox that drops everything (events off).
    pub fn off() -> Self {
        Self::new(None, true)
    }

    /// Whether events go anywhere.
    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Whether anything is waiting for [`Self::flush`].
    pub fn has_pending(&self) -> bool {
        self.pending.lock().is_ok_and(|p| !p.is_empty())
    }

    /// Records the event `make` builds, if events are on.
    pub fn record(&self, make: impl FnOnce() -> Event) {
        if self.sink.is_none() {
            return;
        }
        let mut event = make();
        if !self.include_data {
            event.without_data(DataOmitted::Configured);
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(event);
        }
    }

    /// Hands what was recorded so far to the adapter, in one call.
    pub async fn flush(&self) {
        let Some(sink) = &self.sink else { return };
        let batch = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if !batch.is_empty() {
            sink.put(batch, self.deadline).await;
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("on", &self.is_on())
            .finish_non_exhaustive()
    }
}

/// Keeps every batch in memory, for tests to read back.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Vec<Vec<Event>>>);

#[cfg(any(test, feature = "test-util"))]
impl RecordedEvents {
    /// The batches delivered since the last call, leaving none behind.
    pub fn take_batches(&self) -> Vec<Vec<Event>> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }

    /// The events delivered since the last call, in order, as
    /// (detail-type, detail).
    pub fn take(&self) -> Vec<(&'static str, Value)> {
        self.take_batches()
            .into_iter()
            .flatten()
            .map(|e| (e.detail_type(), e.detail()))
            .collect()
    }
}

#[cfg(any(test, feature = "test-util"))]
#[async_trait]
impl Events for RecordedEvents {
    async fn put(&self, events: Vec<Event>, _deadline: Option<Instant>) {
        if let Ok(mut b) = self.0.lock() {
            b.push(events);
        }
    }
}

#[cfg(test)]
mod tests;
