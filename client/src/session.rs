//! The client task: connect, talk, reconnect. One task owns the socket and
//! all state; the handle talks to it over a channel.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backoff::{backoff_delay, unit};
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

#[derive(Default)]
struct Room {
    last_seq: Option<u64>,
    buffer: BTreeMap<u64, Value>,
    /// Since when messages have waited behind a missing seq.
    gap_since: Option<Instant>,
}

/// How long a gap may last before the room is joined again with `since`
/// to fetch what is missing (a lost post, a frame that could not be read).
const GAP_WAIT: Duration = Duration::from_secs(1);

struct Client {
    config: ClientConfig,
    events: mpsc::Sender<Event>,
    rooms: BTreeMap<String, Room>,
    outbox: Vec<Outgoing>,
    /// ref → message id of sends in flight.
    refs: HashMap<u64, String>,
    next_ref: u64,
    me: Value,
    attempt: u32,
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
        rooms: BTreeMap::new(),
        outbox: Vec::new(),
        refs: HashMap::new(),
        next_ref: 1,
        me: Value::Null,
        attempt: 0,
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
                self.rooms.entry(room).or_default();
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
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                            if let Err(reason) = self.unreadable(text.as_str(), &mut ws).await {
                                return End::Lost(reason);
                            }
                            continue;
                        };
                        if v["type"] == "welcome" && !welcomed {
                            welcomed = true;
                            self.me = v["user"].clone();
                            heartbeat = heartbeat_for(self.config.heartbeat, &v);
                            let id = v["connectionId"].as_str().unwrap_or_default().to_owned();
                            self.emit(Event::State(State::Open { connection_id: id })).await;
                            if self.resume(&mut ws).await.is_err() {
                                return End::Lost("closed while resuming".into());
                            }
                            continue;
                        }
                        if let Err(reason) = self.on_frame(v, &mut ws).await {
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
                        let _ = ws.close(None).await;
                        return End::Closed;
                    }
                    Some(Command::Join(room, reply)) => {
                        self.rooms.entry(room.clone()).or_default();
                        let _ = reply.send(Ok(()));
                        if welcomed && self.send_join(&mut ws, &room).await.is_err() {
                            return End::Lost("closed while joining".into());
                        }
                    }
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

    /// A text frame that is not readable JSON (nested past the parser's
    /// limit, say). Its place in the stream is kept: an unreadable message
    /// still counts as its seq, so later ones are not held behind it; an
    /// unreadable join reply still sets the room's seq.
    async fn unreadable(&mut self, text: &str, ws: &mut Socket) -> Result<(), String> {
        let head = roomcast_protocol::top_level(text);
        let shown: String = text.chars().take(200).collect();
        self.emit(Event::Error(ClientError::Malformed(shown))).await;
        match (head.str("type"), head.str("room"), head.u64("seq")) {
            (Some("message"), Some(room), Some(seq)) => {
                self.offer(json!({"room": room, "seq": seq, "unreadable": true}))
                    .await;
            }
            (Some("joined"), Some(room), Some(seq)) => {
                let stub = json!({"type": "joined", "room": room, "seq": seq, "truncated": true});
                self.on_joined(stub, ws).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Joins again, with `since`, every room whose messages have waited
    /// behind a missing seq for longer than [`GAP_WAIT`].
    async fn fill_gaps(&mut self, ws: &mut Socket) -> Result<(), tungstenite::Error> {
        let now = Instant::now();
        let mut due = Vec::new();
        for (name, room) in &mut self.rooms {
            if room.buffer.is_empty() || room.last_seq.is_none() {
                room.gap_since = None;
                continue;
            }
            match room.gap_since {
                None => room.gap_since = Some(now),
                Some(t) if now.duration_since(t) >= GAP_WAIT => {
                    room.gap_since = Some(now);
                    due.push(name.clone());
                }
                Some(_) => {}
            }
        }
        for room in due {
            tracing::debug!(%room, "gap in the stream; joining again to fetch what is missing");
            self.send_join(ws, &room).await?;
        }
        Ok(())
    }

    /// After `welcome`: re-join rooms with `since`, then resend the outbox.
    async fn resume(&mut self, ws: &mut Socket) -> Result<(), tungstenite::Error> {
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.send_join(ws, &room).await?;
        }
        self.flush(ws, true).await
    }

    async fn send_join(&mut self, ws: &mut Socket, room: &str) -> Result<(), tungstenite::Error> {
        let mut join = json!({"action": "join", "room": room});
        if let Some(since) = self.rooms.get(room).and_then(|r| r.last_seq) {
            join["since"] = json!(since);
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

    async fn on_frame(&mut self, v: Value, ws: &mut Socket) -> Result<(), String> {
        let kind = v["type"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "message" => self.offer(v).await,
            "joined" => self.on_joined(v, ws).await?,
            "ack" => {
                self.on_ack(v).await;
                self.flush(ws, false).await.map_err(|e| e.to_string())?;
            }
            "error" => {
                self.on_error(v).await;
                self.flush(ws, false).await.map_err(|e| e.to_string())?;
            }
            "authed" => {
                // Rooms the refreshed token no longer grants: left by the server.
                for room in v["left"].as_array().into_iter().flatten() {
                    if let Some(room) = room.as_str() {
                        self.rooms.remove(room);
                    }
                }
            }
            "pong" | "left" => {}
            "presence" | "typing" | "direct" | "history" => self.emit(Event::Frame(v)).await,
            _ => {
                let text = v.to_string().chars().take(200).collect();
                self.emit(Event::Error(ClientError::Malformed(text))).await;
            }
        }
        Ok(())
    }

    async fn on_joined(&mut self, v: Value, ws: &mut Socket) -> Result<(), String> {
        let Some(room_name) = v["room"].as_str().map(str::to_owned) else {
            return Ok(());
        };
        let seq = v["seq"].as_u64().unwrap_or(0);
        let missed = v["missed"].as_array().cloned().unwrap_or_default();
        let more = v["more"] == true;
        let first = self
            .rooms
            .get(&room_name)
            .is_none_or(|r| r.last_seq.is_none());
        if first {
            let room = self.rooms.entry(room_name.clone()).or_default();
            room.last_seq = Some(seq);
            room.buffer.retain(|s, _| *s > seq);
            self.drain(&room_name).await;
        } else {
            for m in &missed {
                self.offer(m.clone()).await;
            }
            if !more {
                self.skip_to(&room_name, seq).await;
            }
        }
        self.emit(Event::Joined {
            room: room_name.clone(),
            missed: missed.len(),
            truncated: v["truncated"] == true,
        })
        .await;
        if more {
            self.send_join(ws, &room_name)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn offer(&mut self, m: Value) {
        let (Some(room_name), Some(seq)) =
            (m["room"].as_str().map(str::to_owned), m["seq"].as_u64())
        else {
            self.emit(Event::Error(ClientError::Malformed(
                "message without room or seq".into(),
            )))
            .await;
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if room.last_seq.is_some_and(|last| seq <= last) || room.buffer.contains_key(&seq) {
            return;
        }
        room.buffer.insert(seq, m);
        if room.last_seq.is_some() {
            self.drain(&room_name).await;
        }
    }

    async fn drain(&mut self, room_name: &str) {
        let mut ready = Vec::new();
        if let Some(room) = self.rooms.get_mut(room_name)
            && let Some(mut last) = room.last_seq
        {
            while let Some(m) = room.buffer.remove(&(last + 1)) {
                last += 1;
                ready.push(m);
            }
            room.last_seq = Some(last);
        }
        for m in ready {
            self.deliver(m).await;
        }
    }

    /// Emits one message in order; an unreadable one is reported instead.
    async fn deliver(&self, m: Value) {
        if m["unreadable"] == true {
            let what = format!(
                "message {} in {} could not be read; skipped",
                m["seq"], m["room"]
            );
            self.emit(Event::Error(ClientError::Malformed(what))).await;
        } else {
            self.emit(Event::Message(m)).await;
        }
    }

    /// Delivers buffered messages up to `seq`, skipping holes, and moves on.
    async fn skip_to(&mut self, room_name: &str, seq: u64) {
        let mut ready = Vec::new();
        if let Some(room) = self.rooms.get_mut(room_name) {
            let keep = room.buffer.split_off(&(seq + 1));
            let last = room.last_seq.unwrap_or(0);
            for (s, m) in std::mem::replace(&mut room.buffer, keep) {
                if s > last {
                    ready.push(m);
                }
            }
            room.last_seq = Some(last.max(seq));
        }
        for m in ready {
            self.deliver(m).await;
        }
        self.drain(room_name).await;
    }

    async fn on_ack(&mut self, v: Value) {
        let Some(id) = v["id"].as_str() else { return };
        if let Some(r) = v["ref"].as_u64() {
            self.refs.remove(&r);
        }
        let Some(pos) = self.outbox.iter().position(|o| o.id == id) else {
            return;
        };
        let o = self.outbox.remove(pos);
        let seq = v["seq"].as_u64().unwrap_or(0);
        let ack = Ack {
            id: o.id.clone(),
            seq,
            duplicate: v["duplicate"] == true,
        };
        if let Some(reply) = o.reply {
            let _ = reply.send(Ok(ack));
        }
        // The sender's own message, delivered in order like anyone else's.
        let own = json!({"type": "message", "room": o.room, "seq": seq, "id": o.id, "from": self.me, "data": o.data, "own": true});
        self.offer(own).await;
    }

    async fn on_error(&mut self, v: Value) {
        let code = v["code"].as_str().unwrap_or("unknown").to_owned();
        let message = v["message"].as_str().unwrap_or_default().to_owned();
        let id = v["ref"].as_u64().and_then(|r| self.refs.remove(&r));
        if let Some(id) = id
            && let Some(pos) = self.outbox.iter().position(|o| o.id == id)
        {
            if matches!(code.as_str(), "rate_limited" | "unavailable") {
                // Same id later: the server never stores it twice.
                self.outbox[pos].retry_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
            let o = self.outbox.remove(pos);
            if let Some(reply) = o.reply {
                let _ = reply.send(Err(ClientError::Server { code, message }));
            }
            return;
        }
        self.emit(Event::Error(ClientError::Server { code, message }))
            .await;
    }
}

/// The heartbeat interval for a session: the configured one, or less when
/// the server's idle timeout (from `welcome`) needs it. A third of the idle
/// timeout keeps both the socket and the room memberships alive for a
/// client that only receives: memberships are refreshed by client frames
/// at most every half idle timeout and lapse after one and a half.
fn heartbeat_for(configured: Duration, welcome: &Value) -> tokio::time::Interval {
    let idle = welcome["limits"]["idleTimeoutSecs"]
        .as_u64()
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let period = idle
        .map_or(configured, |idle| configured.min(idle / 3))
        .max(Duration::from_millis(100));
    tokio::time::interval_at(Instant::now() + period, period)
}
