//! The client task: connect, talk, reconnect. One task owns the socket and
//! all state; the handle talks to it over a channel.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use roomcast_protocol::{ErrorCode, Sender, ServerFrame};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backoff::{backoff_delay, unit};
use crate::order::{Epoch, Item, Rooms};
use crate::{Ack, ClientConfig, ClientError, Command, Event, State};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Outgoing {
    room: String,
    id: String,
    data: Value,
    reply: Option<oneshot::Sender<Result<Ack, ClientError>>>,
    /// Retry after this (rate limited or unavailable).
    retry_at: Option<Instant>,
}

struct Client {
    config: ClientConfig,
    events: mpsc::Sender<Event>,
    rooms: Rooms,
    outbox: Vec<Outgoing>,
    /// ref → message id of sends in flight.
    refs: HashMap<u64, String>,
    next_ref: u64,
    me: Option<Sender>,
    attempt: u32,
    /// A `closing` frame asked not to reconnect: (code, reason).
    kicked: Option<(u16, String)>,
}

enum End {
    /// The app closed the client.
    Closed,
    /// The connection was lost.
    Lost(String),
}

pub(crate) async fn run(
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
    let mut c = Client {
        config,
        events,
        rooms: Rooms::default(),
        outbox: Vec::new(),
        refs: HashMap::new(),
        next_ref: 1,
        me: None,
        attempt: 0,
        kicked: None,
    };
    loop {
        c.emit(Event::State(State::Connecting)).await;
        let url = format!("{}?token={}", c.config.url, c.config.token);
        let reason = match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tungstenite::Error::Http(response))
                if matches!(response.status().as_u16(), 401 | 403) =>
            {
                let status = response.status().as_u16();
                c.emit(Event::Error(ClientError::Unauthorized(status)))
                    .await;
                c.stop(&format!("handshake refused with {status}")).await;
                return;
            }
            Err(e) => format!("cannot connect: {e}"),
            Ok((ws, _)) => {
                let opened = Instant::now();
                match c.session(ws, &mut commands).await {
                    End::Closed => {
                        c.stop("closed by the app").await;
                        return;
                    }
                    End::Lost(_) if c.kicked.is_some() => {
                        let (code, reason) = c.kicked.take().unwrap_or_default();
                        let stopped = format!("closed by the server ({code}): {reason}");
                        c.emit(Event::Error(ClientError::Kicked { code, reason }))
                            .await;
                        c.stop(&stopped).await;
                        return;
                    }
                    End::Lost(reason) => {
                        if opened.elapsed() >= c.config.stable_after {
                            c.attempt = 0;
                        }
                        reason
                    }
                }
            }
        };
        let delay = backoff_delay(
            c.attempt,
            c.config.backoff_base,
            c.config.backoff_cap,
            unit(),
        );
        c.attempt = c.attempt.saturating_add(1);
        c.emit(Event::State(State::Reconnecting {
            reason,
            retry_in: delay,
        }))
        .await;
        // Keep taking commands while waiting, so the app never blocks.
        let wake = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Close) => {
                        c.stop("closed by the app").await;
                        return;
                    }
                    Some(cmd) => c.queue(cmd),
                },
            }
        }
    }
}

impl Client {
    async fn emit(&self, e: Event) {
        let _ = self.events.send(e).await;
    }

    async fn stop(&mut self, reason: &str) {
        for o in self.outbox.drain(..) {
            if let Some(reply) = o.reply {
                let _ = reply.send(Err(ClientError::Closed));
            }
        }
        self.emit(Event::State(State::Closed {
            reason: reason.to_owned(),
        }))
        .await;
    }

    /// Takes a command while disconnected: it is acted on after reconnecting.
    fn queue(&mut self, cmd: Command) {
        match cmd {
            Command::Join(room, reply) => {
                self.rooms.add(&room);
                let _ = reply.send(Ok(()));
            }
            Command::Send {
                room,
                id,
                data,
                reply,
            } => {
                if self.outbox.len() >= self.config.outbox_limit {
                    let _ = reply.send(Err(ClientError::OutboxFull(self.outbox.len())));
                    return;
                }
                self.outbox.push(Outgoing {
                    room,
                    id,
                    data,
                    reply: Some(reply),
                    retry_at: None,
                });
            }
            Command::Ephemeral { reply, .. } => {
                let _ = reply.send(Err(ClientError::NotConnected));
            }
            Command::Close => {}
        }
    }

    fn frame(&mut self, mut v: Value) -> Message {
        v["ref"] = json!(self.next_ref);
        self.next_ref += 1;
        Message::text(v.to_string())
    }

    async fn session(&mut self, mut ws: Socket, commands: &mut mpsc::Receiver<Command>) -> End {
        let hello = self.frame(json!({"action": "hello"}));
        if ws.send(hello).await.is_err() {
            return End::Lost("closed during hello".into());
        }
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.tick().await;
        let mut retries = tokio::time::interval(Duration::from_millis(500));
        let mut welcomed = false;
        loop {
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(frame) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
                            if let Err(reason) = self.unreadable(text.as_str(), &mut ws).await {
                                return End::Lost(reason);
                            }
                            continue;
                        };
                        if let ServerFrame::Welcome { connection_id, user, limits, .. } = frame {
                            if welcomed {
                                continue;
                            }
                            welcomed = true;
                            self.me = Some(user);
                            heartbeat = heartbeat_for(self.config.heartbeat, limits.idle_timeout_secs);
                            self.emit(Event::State(State::Open { connection_id })).await;
                            if self.resume(&mut ws).await.is_err() {
                                return End::Lost("closed while resuming".into());
                            }
                            continue;
                        }
                        if let Err(reason) = self.on_frame(frame, &mut ws).await {
                            return End::Lost(reason);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        if code == 1009 {
                            self.emit(Event::Error(ClientError::MessageTooBig)).await;
                        }
                        return End::Lost(format!("closed by the server with {code}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Lost(format!("socket error: {e}")),
                    None => return End::Lost("socket ended".into()),
                },
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Close) => {
                        // 1000, not a bare close frame (which the server
                        // reports as 1005, "no status").
                        let normal = tungstenite::protocol::CloseFrame {
                            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                            reason: "".into(),
                        };
                        let _ = ws.close(Some(normal)).await;
                        return End::Closed;
                    }
                    Some(Command::Join(room, reply)) => {
                        self.rooms.add(&room);
                        let _ = reply.send(Ok(()));
                        if welcomed && self.send_join(&mut ws, &room).await.is_err() {
                            return End::Lost("closed while joining".into());
                        }
                    }
                    Some(Command::Ephemeral { room, data, reply }) if welcomed => {
                        let id = uuid::Uuid::new_v4().simple().to_string();
                        let frame = self.frame(json!({"action": "send", "room": room, "id": id, "data": data, "ephemeral": true}));
                        let sent = ws.send(frame).await;
                        let _ = reply.send(sent.as_ref().map(|_| ()).map_err(|_| ClientError::NotConnected));
                        if sent.is_err() {
                            return End::Lost("closed while sending".into());
                        }
                    }
                    Some(cmd @ Command::Ephemeral { .. }) => self.queue(cmd),
                    Some(cmd @ Command::Send { .. }) => {
                        self.queue(cmd);
                        if welcomed && self.flush(&mut ws, false).await.is_err() {
                            return End::Lost("closed while sending".into());
                        }
                    }
                },
                _ = heartbeat.tick() => {
                    let beat = self.frame(json!({"action": "heartbeat"}));
                    if ws.send(beat).await.is_err() {
                        return End::Lost("closed during heartbeat".into());
                    }
                }
                _ = retries.tick() => {
                    if welcomed && self.flush(&mut ws, false).await.is_err() {
                        return End::Lost("closed while resending".into());
                    }
                    if welcomed && self.fill_gaps(&mut ws).await.is_err() {
                        return End::Lost("closed while filling a gap".into());
                    }
                }
            }
        }
    }

    /// A text frame that is not a readable server frame (JSON nested past
    /// the parser's limit, say, or a type this client does not know). Its
    /// place in the stream is kept: an unreadable message still counts as
    /// its seq, so later ones are not held behind it; an unreadable join
    /// reply still sets the room's seq.
    async fn unreadable(&mut self, text: &str, ws: &mut Socket) -> Result<(), String> {
        let head = roomcast_protocol::top_level(text);
        let shown: String = text.chars().take(200).collect();
        self.emit(Event::Error(ClientError::Malformed(shown))).await;
        match (head.str("type"), head.str("room"), head.u64("seq")) {
            (Some("message"), Some(room), Some(seq)) => {
                let item = Item::Unreadable {
                    room: room.to_owned(),
                    seq,
                };
                let ready = self.rooms.offer(room, seq, item);
                self.deliver(ready).await;
            }
            (Some("joined"), Some(room), Some(seq)) => {
                self.on_joined(room.to_owned(), seq, Vec::new(), false, true, ws)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Joins again, with `since`, every room whose messages have waited
    /// behind a missing seq for too long.
    async fn fill_gaps(&mut self, ws: &mut Socket) -> Result<(), tungstenite::Error> {
        for room in self.rooms.gaps_due(Instant::now()) {
            tracing::debug!(%room, "gap in the stream; joining again to fetch what is missing");
            self.send_join(ws, &room).await?;
        }
        Ok(())
    }

    /// After `welcome`: re-join rooms with `since`, then resend the outbox.
    async fn resume(&mut self, ws: &mut Socket) -> Result<(), tungstenite::Error> {
        for room in self.rooms.names() {
            self.send_join(ws, &room).await?;
        }
        self.flush(ws, true).await
    }

    async fn send_join(&mut self, ws: &mut Socket, room: &str) -> Result<(), tungstenite::Error> {
        let mut join = json!({"action": "join", "room": room});
        if let Some(since) = self.rooms.last_seq(room) {
            join["since"] = json!(since);
            // `since` counts in this epoch: if the room's stream started
            // again, the server replays the new one from its start.
            if let Some(epoch) = self.rooms.epoch(room) {
                join["epoch"] = json!(epoch);
            }
        }
        let frame = self.frame(join);
        ws.send(frame).await
    }

    /// Sends the oldest unacknowledged message if none is in flight. One at
    /// a time: every frame is its own invocation on the server, so two sends
    /// in flight could be stored in either order. After a reconnect (`all`)
    /// nothing is in flight any more.
    async fn flush(&mut self, ws: &mut Socket, all: bool) -> Result<(), tungstenite::Error> {
        if all {
            self.refs.clear();
        }
        if !self.refs.is_empty() {
            return Ok(());
        }
        let Some(o) = self.outbox.first_mut() else {
            return Ok(());
        };
        if o.retry_at.is_some_and(|t| t > Instant::now()) {
            return Ok(());
        }
        o.retry_at = None;
        let send = json!({"action": "send", "room": o.room, "id": o.id, "data": o.data});
        let id = o.id.clone();
        self.refs.insert(self.next_ref, id);
        let frame = self.frame(send);
        ws.send(frame).await
    }

    async fn on_frame(&mut self, frame: ServerFrame, ws: &mut Socket) -> Result<(), String> {
        match frame {
            ServerFrame::Message(m) => {
                let (room, seq) = (m.room.clone(), m.seq);
                // Messages stored before epochs carry none: no evidence.
                if !m.epoch.is_empty() {
                    match self.rooms.check_epoch(&room, &m.epoch) {
                        Epoch::Same => {}
                        Epoch::Stale => return Ok(()),
                        Epoch::Restarted => self.restarted(&room, &m.epoch).await,
                    }
                }
                let item = message_item(m);
                let ready = self.rooms.offer(&room, seq, item);
                self.deliver(ready).await;
            }
            ServerFrame::Joined {
                room,
                seq,
                epoch,
                missed,
                truncated,
                more,
                ..
            } => {
                // A reply in another epoch replays the new stream from its
                // start (the join said which epoch `since` counted in).
                if self.rooms.check_epoch(&room, &epoch) == Epoch::Restarted {
                    self.restarted(&room, &epoch).await;
                }
                self.on_joined(room, seq, missed.unwrap_or_default(), more, truncated, ws)
                    .await?;
            }
            ServerFrame::Ack {
                id,
                seq,
                epoch,
                duplicate,
                reference,
                ..
            } => {
                self.on_ack(&id, seq.unwrap_or(0), &epoch, duplicate, reference)
                    .await;
                self.flush(ws, false).await.map_err(|e| e.to_string())?;
            }
            ServerFrame::Error {
                code,
                message,
                reference,
            } => {
                self.on_error(code, message, reference).await;
                self.flush(ws, false).await.map_err(|e| e.to_string())?;
            }
            ServerFrame::Authed { left, .. } => {
                // Rooms the refreshed token no longer grants: left by the server.
                for room in &left {
                    self.rooms.remove(room);
                }
            }
            ServerFrame::Closing {
                code,
                reason,
                reconnect,
            } => {
                tracing::info!(code, %reason, reconnect, "the server is closing this connection");
                if !reconnect {
                    self.kicked = Some((code, reason));
                }
            }
            ServerFrame::Pong { .. } | ServerFrame::Left { .. } | ServerFrame::Welcome { .. } => {}
            frame @ (ServerFrame::Presence { .. }
            | ServerFrame::Roster { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::Ephemeral { .. }
            | ServerFrame::Direct { .. }
            | ServerFrame::History { .. }) => self.emit(Event::Frame(frame)).await,
        }
        Ok(())
    }

    async fn on_joined(
        &mut self,
        room: String,
        seq: u64,
        missed: Vec<roomcast_protocol::Message>,
        more: bool,
        truncated: bool,
        ws: &mut Socket,
    ) -> Result<(), String> {
        let count = missed.len();
        let first = self.rooms.is_new(&room);
        if first {
            // The first reply sets the room's place; messages it carries
            // are ones stored above that place behind a seq still being
            // written, which this member would otherwise never be sent.
            let ready = self.rooms.joined(&room, seq, true);
            self.deliver(ready).await;
        }
        let last_missed = missed.last().map(|m| m.seq);
        for m in missed {
            let s = m.seq;
            let ready = self.rooms.offer(&room, s, message_item(m));
            self.deliver(ready).await;
        }
        if !first {
            // Every seq up to `seq` is stored or closed for good: what a
            // complete reply did not carry is not coming. A partial one
            // (`more`) vouches only up to its last message.
            let upto = match (more, last_missed) {
                (true, Some(last)) => last.min(seq),
                (true, None) => 0,
                (false, _) => seq,
            };
            let ready = self.rooms.joined(&room, upto, true);
            self.deliver(ready).await;
        }
        self.emit(Event::Joined {
            room: room.clone(),
            missed: count,
            truncated,
        })
        .await;
        if more {
            self.send_join(ws, &room).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Tells the app that `room`'s stream started again: what it shows of
    /// the room is from a stream that no longer exists, and the new one
    /// follows from its seq 1.
    async fn restarted(&self, room: &str, epoch: &str) {
        tracing::info!(%room, %epoch, "the room's stream started again; following the new one from its start");
        self.emit(Event::Restarted {
            room: room.to_owned(),
            epoch: epoch.to_owned(),
        })
        .await;
    }

    /// Emits messages in order; an unreadable one is reported instead.
    async fn deliver(&self, ready: Vec<Item>) {
        for item in ready {
            let event = match item {
                Item::Message(m) => Event::Message(m),
                Item::Unreadable { room, seq } => Event::Error(ClientError::Malformed(format!(
                    "message {seq} in {room:?} could not be read; skipped"
                ))),
            };
            self.emit(event).await;
        }
    }

    async fn on_ack(
        &mut self,
        id: &str,
        seq: u64,
        epoch: &str,
        duplicate: bool,
        reference: Option<Value>,
    ) {
        if let Some(r) = reference.as_ref().and_then(Value::as_u64) {
            self.refs.remove(&r);
        }
        let Some(pos) = self.outbox.iter().position(|o| o.id == id) else {
            return;
        };
        let o = self.outbox.remove(pos);
        let ack = Ack {
            id: o.id.clone(),
            seq,
            duplicate,
        };
        if let Some(reply) = o.reply {
            let _ = reply.send(Ok(ack));
        }
        // The sender's own message, delivered in order like anyone else's,
        // in the stream its ack names (a duplicate's names none).
        if !epoch.is_empty() {
            match self.rooms.check_epoch(&o.room, epoch) {
                Epoch::Same => {}
                Epoch::Stale => return,
                Epoch::Restarted => self.restarted(&o.room, epoch).await,
            }
        }
        let own = json!({"type": "message", "room": o.room, "seq": seq, "id": o.id, "from": self.me, "data": o.data, "own": true});
        let ready = self.rooms.offer(&o.room, seq, Item::Message(own));
        self.deliver(ready).await;
    }

    async fn on_error(&mut self, code: ErrorCode, message: String, reference: Option<Value>) {
        let id = reference
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|r| self.refs.remove(&r));
        let code_name = code.as_str().to_owned();
        if let Some(id) = id
            && let Some(pos) = self.outbox.iter().position(|o| o.id == id)
        {
            if matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable) {
                // Same id later: the server never stores it twice.
                self.outbox[pos].retry_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
            let o = self.outbox.remove(pos);
            if let Some(reply) = o.reply {
                let _ = reply.send(Err(ClientError::Server {
                    code: code_name,
                    message,
                }));
            }
            return;
        }
        self.emit(Event::Error(ClientError::Server {
            code: code_name,
            message,
        }))
        .await;
    }
}

/// A message as the app receives it: the frame as JSON, `type` included.
fn message_item(m: roomcast_protocol::Message) -> Item {
    Item::Message(serde_json::to_value(ServerFrame::Message(m)).unwrap_or_default())
}

/// The heartbeat interval for a session: the configured one, or less when
/// the server's idle timeout (from `welcome`) needs it. A third of the idle
/// timeout keeps both the socket and the room memberships alive for a
/// client that only receives: memberships are refreshed by client frames
/// at most every half idle timeout and lapse after one and a half.
fn heartbeat_for(configured: Duration, idle_timeout_secs: u64) -> tokio::time::Interval {
    let idle = Some(idle_timeout_secs)
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let period = idle
        .map_or(configured, |idle| configured.min(idle / 3))
        .max(Duration::from_millis(100));
    tokio::time::interval_at(Instant::now() + period, period)
}
