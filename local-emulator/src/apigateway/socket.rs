//! One connection's life: frames in and out, limits, timers, route
//! selection and invocation, the closing handshake, and `$disconnect`.
//!
//! Two tasks per connection. The writer owns the socket's sending half and
//! the outbound queue; every write has a deadline, so a client that stops
//! reading is cut after [`EmulatorConfig::write_timeout`] instead of wedging
//! the connection. The session loop owns the receiving half, the timers and
//! close requests, so those are served whatever the writer is doing.
//!
//! [`EmulatorConfig::write_timeout`]: crate::EmulatorConfig::write_timeout

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tracing::Instrument;

use crate::apigateway::connections::Connection;
use crate::apigateway::routing::{disconnected, dispatch};
use crate::apigateway::service::ApiGateway;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// API Gateway's report of a connection that ended without a closing
/// handshake (a reset, a vanished client, a slow consumer cut off).
const ABNORMAL: (u16, &str) = (1006, "Connection was closed abnormally");
const GOING_AWAY: (u16, &str) = (1001, "Going away");

/// How a connection ended: what `$disconnect` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ending {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl Ending {
    fn new((code, reason): (u16, &str)) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
        }
    }
}

/// Why the session loop stopped, which decides how the socket is closed.
enum Stop {
    /// The server closes: queued frames, then a close frame with this code.
    Server(Ending),
    /// The client sent a close frame: answer it.
    Client(Ending),
    /// The socket is dead (reset, EOF without a close frame, a stalled or
    /// failed write): nothing more can be sent.
    Dead,
}

/// What the writer does once the connection is ending.
#[derive(Clone, Debug)]
enum Closing {
    /// Write what was queued before the close, then this close frame.
    Send(CloseFrame),
    /// Complete the client's closing handshake.
    Reply,
}

/// Why the writer stopped.
#[derive(Debug, PartialEq, Eq)]
enum WriteEnd {
    /// The close was written (or the client closed first).
    Closed,
    /// A frame waited longer than the write timeout: a slow consumer.
    Stalled,
    /// The socket refused a write.
    Failed,
}

/// The writer's settings, from the emulator config.
#[derive(Clone, Copy, Debug)]
struct WriteLimits {
    max_frame: usize,
    write_timeout: Duration,
    close_timeout: Duration,
}

pub(crate) async fn run(
    gateway: Arc<ApiGateway>,
    conn: Arc<Connection>,
    ws: Socket,
    rx: mpsc::Receiver<Message>,
) {
    let span = tracing::info_span!("socket", connection_id = %conn.peer.id);
    async {
        let _open = gateway.sockets.enter();
        // Registered only now: a post before this point is 410, as on AWS.
        gateway.connections.insert(conn.clone());
        let (sink, stream) = ws.split();
        let (ending, sink, stream) = session(&gateway, &conn, sink, stream, rx).await;
        // The connection is over for the API: `$disconnect` runs now, while
        // the TCP connection winds down beside it.
        let wind_down = async {
            if let Some(sink) = sink
                && let Ok(ws) = sink.reunite(stream)
            {
                linger(ws, gateway.options.close_timeout).await;
            }
        };
        tokio::join!(
            wind_down,
            disconnected(&gateway, &conn, ending.code, &ending.reason)
        );
    }
    .instrument(span)
    .await;
}

/// After the close frame: half-closes TCP, then reads until the client
/// closes its side (or the deadline), so that a client still sending does
/// not get a reset that would destroy the close frame and replies it has
/// not read yet.
async fn linger(mut ws: Socket, deadline: Duration) {
    let raw = ws.get_mut();
    let until = Instant::now() + deadline;
    let _ = timeout_at(until, raw.shutdown()).await;
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = timeout_at(until, raw.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
}

/// Runs the connection until it ends; returns how it ended and, when a
/// closing handshake was done, the sending half for [`linger`].
async fn session<Si, St>(
    gateway: &Arc<ApiGateway>,
    conn: &Arc<Connection>,
    sink: Si,
    mut stream: St,
    rx: mpsc::Receiver<Message>,
) -> (Ending, Option<Si>, St)
where
    Si: Sink<Message, Error = WsError> + Unpin + Send + 'static,
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let limits = WriteLimits {
        max_frame: gateway.options.max_frame_bytes,
        write_timeout: gateway.options.write_timeout,
        close_timeout: gateway.options.close_timeout,
    };
    let (closing_tx, closing_rx) = watch::channel(None);
    let mut writer = tokio::spawn(write_loop(
        sink,
        rx,
        closing_rx,
        limits,
        conn.clone(),
        gateway.clone(),
    ));
    let stop = receive(gateway, conn, &mut stream, &mut writer).await;
    // Gone for every later `@connections` call from now on, as on AWS.
    gateway.connections.remove(&conn.peer.id);
    let (ending, closing) = match stop {
        // A cut (an injected network failure): no close frame, no linger.
        (Stop::Server(e), _) if e.code == ABNORMAL.0 => (e, None),
        (Stop::Server(e), _) => {
            let frame = CloseFrame {
                code: CloseCode::from(e.code),
                reason: e.reason.clone().into(),
            };
            (e, Some(Closing::Send(frame)))
        }
        (Stop::Client(e), _) => (e, Some(Closing::Reply)),
        (Stop::Dead, e) => (e.unwrap_or_else(|| Ending::new(ABNORMAL)), None),
    };
    let Some(closing) = closing else {
        writer.abort();
        return (ending, None, stream);
    };
    let _ = closing_tx.send(Some(closing));
    let sink = finish_writer(&mut writer, &mut stream, limits.close_timeout).await;
    (ending, sink, stream)
}

/// Serves frames, timers and close requests until the connection ends. A
/// `Dead` stop may come with the ending to report.
async fn receive<Si, St>(
    gateway: &Arc<ApiGateway>,
    conn: &Arc<Connection>,
    stream: &mut St,
    writer: &mut JoinHandle<(WriteEnd, Si)>,
) -> (Stop, Option<Ending>)
where
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let started = Instant::now();
    // A fast-clock fault divides both timers; a change of it wakes the loop.
    let mut clock = gateway.faults.clock_changes();
    loop {
        let factor = gateway.faults.clock_factor();
        let max = gateway.options.max_connection_duration / factor;
        let idle = gateway.options.idle_timeout / factor;
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let idle_for = Duration::from_millis(
            u64::try_from(gateway.now_ms() - conn.last_active_ms()).unwrap_or(0),
        );
        let idle_deadline = Instant::now() + idle.saturating_sub(idle_for);
        tokio::select! {
            biased;
            reason = conn.close_requested() => {
                return (Stop::Server(Ending { code: reason.code, reason: reason.reason }), None);
            }
            Ok(()) = clock.changed() => {}
            () = sleep_until(started + max) => {
                // Checked again at the current factor: a fast clock that
                // expired meanwhile (by its duration) told nobody.
                let max_now = gateway.options.max_connection_duration / gateway.faults.clock_factor();
                if started.elapsed() >= max_now {
                    tracing::info!(factor, "maximum connection duration reached");
                    return (Stop::Server(Ending::new(GOING_AWAY)), None);
                }
            }
            () = sleep_until(idle_deadline) => {
                let idle_now = gateway.options.idle_timeout / gateway.faults.clock_factor();
                let idle_ms = idle_ms.max(i64::try_from(idle_now.as_millis()).unwrap_or(i64::MAX));
                if gateway.now_ms() - conn.last_active_ms() >= idle_ms {
                    tracing::info!(factor, "idle timeout");
                    return (Stop::Server(Ending::new(GOING_AWAY)), None);
                }
            }
            done = &mut *writer => {
                if let Ok((WriteEnd::Stalled, _)) = done {
                    tracing::warn!(write_timeout_ms = gateway.options.write_timeout.as_millis() as u64, "slow consumer: a frame could not be written in time; connection cut");
                    gateway.metrics.error("slow_consumer");
                }
                return (Stop::Dead, Some(Ending::new(ABNORMAL)));
            }
            incoming = stream.next() => {
                if let Some(stop) = on_incoming(gateway, conn, incoming) {
                    return (stop, None);
                }
            }
        }
    }
}

/// One item from the socket: dispatches data frames; returns why to stop,
/// if it should.
fn on_incoming(
    gateway: &Arc<ApiGateway>,
    conn: &Arc<Connection>,
    incoming: Option<Result<Message, WsError>>,
) -> Option<Stop> {
    let close = |code: u16, reason: &str| Some(Stop::Server(Ending::new((code, reason))));
    match incoming {
        Some(Ok(Message::Text(text))) => {
            conn.received(gateway.now_ms());
            gateway.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
            dispatch(gateway, conn, text.as_str().to_owned());
            None
        }
        // AWS, "Binary media types for WebSocket APIs in API Gateway":
        // WebSocket APIs don't support binary frames in incoming messages;
        // API Gateway rejects one and disconnects the client with code
        // 1003. No route is invoked. (The page names no close reason; the
        // one here is RFC 6455's name for the code.)
        Some(Ok(Message::Binary(bytes))) => {
            tracing::info!(
                bytes = bytes.len(),
                "binary frame: closing with 1003, as API Gateway does"
            );
            gateway.metrics.error("binary_frame");
            close(1003, "Unsupported data")
        }
        // Pings are answered by tungstenite; control frames are not activity.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
        Some(Ok(Message::Close(frame))) => Some(Stop::Client(match frame {
            Some(f) => Ending {
                code: u16::from(f.code),
                reason: f.reason.as_str().to_owned(),
            },
            None => Ending::new((1005, "Client-side close frame status not set")),
        })),
        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
            tracing::info!(size, max_size, "frame or message too big");
            gateway.metrics.error("message_too_big");
            close(1009, "Message too big")
        }
        Some(Err(WsError::Utf8(_))) => {
            gateway.metrics.error("invalid_utf8");
            close(1007, "Invalid frame payload data")
        }
        // A reset or EOF with no close frame: the client vanished.
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) | None => {
            Some(Stop::Dead)
        }
        Some(Err(WsError::Protocol(e))) => {
            tracing::info!(error = %e, "protocol error");
            close(1002, "Protocol error")
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "socket error");
            Some(Stop::Dead)
        }
    }
}

/// Waits (bounded) for the writer to finish closing, reading and dropping
/// whatever the client still sends so that neither side blocks the other.
/// Returns the sending half when the writer finished in time.
async fn finish_writer<Si, St>(
    writer: &mut JoinHandle<(WriteEnd, Si)>,
    stream: &mut St,
    close_timeout: Duration,
) -> Option<Si>
where
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let deadline = Instant::now() + close_timeout;
    let mut reading = true;
    loop {
        tokio::select! {
            done = &mut *writer => {
                return match done {
                    Ok((WriteEnd::Closed, sink)) => Some(sink),
                    _ => None,
                };
            }
            () = sleep_until(deadline) => {
                writer.abort();
                return None;
            }
            next = stream.next(), if reading => {
                reading = matches!(next, Some(Ok(_)));
            }
        }
    }
}

/// Writes queued frames, each within the write timeout, until the
/// connection ends; then writes what was queued before the close and the
/// close itself, all within the close timeout.
async fn write_loop<Si>(
    mut sink: Si,
    mut queue: mpsc::Receiver<Message>,
    mut closing: watch::Receiver<Option<Closing>>,
    limits: WriteLimits,
    conn: Arc<Connection>,
    gateway: Arc<ApiGateway>,
) -> (WriteEnd, Si)
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    loop {
        tokio::select! {
            // A close is noticed before more frames are taken; the frames
            // queued before it still go out first, below.
            biased;
            _ = closing.changed() => break,
            next = queue.recv() => {
                let Some(message) = next else { break };
                let deadline = Instant::now() + limits.write_timeout;
                // Only what the inspector shows; nothing when nobody watches.
                let sent = if gateway.timeline.watching() {
                    message.to_text().map(|t| crate::timeline::excerpt(t, 1024).to_owned()).unwrap_or_default()
                } else {
                    String::new()
                };
                if let Err(end) = write(&mut sink, message, limits.max_frame, deadline).await {
                    return (end, sink);
                }
                conn.wrote(gateway.now_ms());
                gateway.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
                if gateway.timeline.watching() {
                    record_out(&gateway, &conn, &sent);
                }
            }
        }
    }
    let deadline = Instant::now() + limits.close_timeout;
    let closing = closing.borrow().clone();
    let result = match closing {
        Some(Closing::Send(frame)) => {
            while let Ok(message) = queue.try_recv() {
                if let Err(end) = write(&mut sink, message, limits.max_frame, deadline).await {
                    return (end, sink);
                }
                gateway.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
            }
            timeout_at(deadline, sink.send(Message::Close(Some(frame)))).await
        }
        Some(Closing::Reply) | None => timeout_at(deadline, sink.close()).await,
    };
    let end = match result {
        Ok(Ok(())) => WriteEnd::Closed,
        Ok(Err(_)) => WriteEnd::Failed,
        Err(_) => WriteEnd::Stalled,
    };
    (end, sink)
}

/// A frame sent, on the inspector's timeline.
fn record_out(gateway: &ApiGateway, conn: &Connection, text: &str) {
    gateway.timeline.record(
        "frame-out",
        gateway.now_ms(),
        json!({"connectionId": conn.peer.id, "user": conn.authorizer["principalId"], "text": text}),
    );
}

/// Writes one message by `deadline`. Messages over the frame limit go out
/// as one message in several frames, as API Gateway sends them.
async fn write<Si>(
    sink: &mut Si,
    message: Message,
    max_frame: usize,
    deadline: Instant,
) -> Result<(), WriteEnd>
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    let result = match fragments(&message, max_frame) {
        None => timeout_at(deadline, sink.send(message)).await,
        Some(frames) => {
            timeout_at(deadline, async {
                for frame in frames {
                    sink.feed(Message::Frame(frame)).await?;
                }
                sink.flush().await
            })
            .await
        }
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteEnd::Failed),
        Err(_) => Err(WriteEnd::Stalled),
    }
}

/// A data message longer than `max_frame`, as frames of at most
/// `max_frame` bytes (text is split between characters); `None` if it fits.
fn fragments(message: &Message, max_frame: usize) -> Option<Vec<Frame>> {
    let (bytes, opcode, text) = match message {
        Message::Text(t) if t.len() > max_frame => (t.as_bytes(), Data::Text, Some(t.as_str())),
        Message::Binary(b) if b.len() > max_frame => (&b[..], Data::Binary, None),
        _ => return None,
    };
    let max_frame = max_frame.max(4);
    let mut frames = Vec::with_capacity(bytes.len() / max_frame + 1);
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + max_frame).min(bytes.len());
        if let Some(text) = text {
            while !text.is_char_boundary(end) {
                end -= 1;
            }
        }
        let op = if start == 0 { opcode } else { Data::Continue };
        frames.push(Frame::message(
            bytes::Bytes::copy_from_slice(&bytes[start..end]),
            OpCode::Data(op),
            end == bytes.len(),
        ));
        start = end;
    }
    Some(frames)
}

#[cfg(test)]
mod tests;
