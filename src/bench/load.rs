//! The load generator behind `roomcast bench`. Every scenario has a bounded
//! count and duration, stops by itself, and returns one JSON result. Counts
//! are exact: a lost or duplicated delivery is reported, not hidden.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod presence;
mod stats;

pub(crate) use presence::fill as presence_fill;
pub(crate) use stats::summarize;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Tokens for connection `i` (Roomcast needs one per connection).
pub(crate) type Tokens = Arc<dyn Fn(usize) -> String + Send + Sync>;

/// What to load.
#[derive(Clone)]
pub(crate) enum Target {
    /// A Roomcast endpoint (an emulator in one of its modes, or a
    /// deployment), named in the results.
    Roomcast {
        /// `roomcast`, `roomcast-in-process`, `roomcast-process-moto`…
        name: &'static str,
        /// WebSocket URL.
        url: String,
        /// Token for connection `i`.
        tokens: Tokens,
    },
    /// The reference broadcast server.
    Reference {
        /// WebSocket URL.
        url: String,
    },
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A connection or join failed where the scenario cannot go on.
    #[error("{0}")]
    Setup(String),
}

/// Longest wait for any single setup step.
const STEP: Duration = Duration::from_secs(30);

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

impl Target {
    /// The name used in results.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Roomcast { name, .. } => name,
            Self::Reference { .. } => "reference",
        }
    }

    async fn connect(&self, i: usize) -> Result<Ws, BenchError> {
        let url = match self {
            Self::Roomcast { url, tokens, .. } => {
                format!("{url}?token={}", tokens(i))
            }
            Self::Reference { url } => url.clone(),
        };
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url.as_str()))
            .await
            .map_err(|_| BenchError::Setup(format!("connect {i} timed out")))?
            .map_err(|e| BenchError::Setup(format!("connect {i}: {e}")))?;
        Ok(ws)
    }

    /// Joins bench room `room` (Roomcast) and waits for the reply.
    async fn join(&self, ws: &mut Ws, room: u64) -> Result<(), BenchError> {
        if !matches!(self, Self::Reference { .. }) {
            ws.send(Message::text(
                json!({"action": "join", "room": room_name(room)}).to_string(),
            ))
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
            tokio::time::timeout(STEP, async {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m
                        && t.as_str().contains("\"joined\"")
                    {
                        return Ok(());
                    }
                }
                Err(BenchError::Setup("socket closed before joined".into()))
            })
            .await
            .map_err(|_| BenchError::Setup("join timed out".into()))??;
        }
        Ok(())
    }

    /// Message `n` of sender `sender` in bench room `room`, stamped with now.
    fn frame(&self, room: u64, sender: u64, n: u64) -> Message {
        let data = json!({"t": now_us(), "n": n, "s": sender, "r": room});
        Message::text(match self {
            Self::Roomcast { .. } => json!({
                "action": "send", "room": room_name(room), "id": format!("b{sender}-{n}"), "data": data,
            })
            .to_string(),
            // The reference has no rooms: it sends everything to everyone,
            // and receivers keep only their room's frames.
            Self::Reference { .. } => data.to_string(),
        })
    }

    /// A delivered bench message, if this frame is one.
    fn delivery(&self, text: &str) -> Option<Delivered> {
        let v: Value = serde_json::from_str(text).ok()?;
        let d = match self {
            Self::Roomcast { .. } if v["type"] == "message" => &v["data"],
            Self::Roomcast { .. } => return None,
            Self::Reference { .. } => &v,
        };
        Some(Delivered {
            room: d["r"].as_u64()?,
            sender: d["s"].as_u64()?,
            n: d["n"].as_u64()?,
            sent_us: d["t"].as_u64()?,
        })
    }

    /// Opens `n` connections with `in_flight` handshakes at once; joins if asked.
    async fn open_many(
        &self,
        n: usize,
        in_flight: usize,
        join: Option<u64>,
        offset: usize,
    ) -> Result<Vec<Ws>, BenchError> {
        let gate = Arc::new(Semaphore::new(in_flight.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let gate = gate.clone();
            let target = self.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate
                    .acquire_owned()
                    .await
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                let mut ws = target.connect(offset + i).await?;
                if let Some(room) = join {
                    target.join(&mut ws, room).await?;
                }
                Ok::<Ws, BenchError>(ws)
            }));
        }
        let mut sockets = Vec::with_capacity(n);
        for t in tasks {
            sockets.push(t.await.map_err(|e| BenchError::Setup(e.to_string()))??);
        }
        Ok(sockets)
    }
}

fn room_name(room: u64) -> String {
    format!("bench-{room}")
}

/// One delivered bench message.
struct Delivered {
    room: u64,
    sender: u64,
    n: u64,
    sent_us: u64,
}

/// `connect`: `n` clients, `in_flight` handshakes at once.
pub(crate) async fn connect(target: &Target, n: usize, in_flight: usize) -> Value {
    let gate = Arc::new(Semaphore::new(in_flight.max(1)));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (gate, target, latencies, failures) = (
            gate.clone(),
            target.clone(),
            latencies.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return None;
            };
            let t0 = Instant::now();
            match target.connect(100_000 + i).await {
                Ok(ws) => {
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(t0.elapsed().as_micros() as u64);
                    Some(ws)
                }
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        if let Ok(Some(ws)) = t.await {
            open.push(ws);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let s = summarize(&mut lat);
    for mut ws in open {
        let _ = ws.close(None).await;
    }
    json!({
        "scenario": "connect", "target": target.name(), "clients": n, "in_flight": in_flight,
        "connects_per_s": (n - failures.load(Ordering::Relaxed)) as f64 / elapsed,
        "handshake_p50_ms": s.p50_ms, "handshake_p99_ms": s.p99_ms,
        "failures": failures.load(Ordering::Relaxed),
    })
}

/// Deliveries seen, by (receiver, sender, message), with their count.
type Seen = HashMap<(usize, u64, u64), u32>;

/// Sizes of a `broadcast` run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Broadcast {
    /// Rooms.
    pub(crate) rooms: usize,
    /// Receivers per room.
    pub(crate) members: usize,
    /// Senders per room.
    pub(crate) senders: usize,
    /// Messages per second, per sender.
    pub(crate) rate: u32,
    /// Messages per sender.
    pub(crate) count: u64,
}

/// The next bench delivery on `ws`, skipping other frames; `None` once the
/// socket ends or `deadline` passes.
async fn next_delivery(target: &Target, ws: &mut Ws, deadline: Instant) -> Option<Delivered> {
    loop {
        let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline.into(), ws.next()).await else {
            return None;
        };
        if let Message::Text(t) = m
            && let Some(d) = target.delivery(t.as_str())
        {
            return Some(d);
        }
    }
}

/// `broadcast`: R rooms of M members, S senders each at a fixed rate.
/// Every (receiver, sender, message) is counted: lost and duplicate counts
/// are exact.
pub(crate) async fn broadcast(
    target: &Target,
    b: Broadcast,
    pid: Option<u32>,
) -> Result<Value, BenchError> {
    let per_room = b.members + b.senders;
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for r in 0..b.rooms {
        let offset = r * per_room;
        for ws in target
            .open_many(b.members, 50, Some(r as u64), offset)
            .await?
        {
            receivers.push((r as u64, ws));
        }
        for (s, ws) in target
            .open_many(b.senders, 50, Some(r as u64), offset + b.members)
            .await?
            .into_iter()
            .enumerate()
        {
            senders.push((r as u64, s as u64, ws));
        }
    }
    let wanted = b.senders as u64 * b.count;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let last_delivery = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now()
        + Duration::from_secs_f64(b.count as f64 / f64::from(b.rate.max(1)))
        + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for (i, (room, mut ws)) in receivers.into_iter().enumerate() {
        let (target, latencies, seen, last) = (
            target.clone(),
            latencies.clone(),
            seen.clone(),
            last_delivery.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut got = 0u64;
            while got < wanted {
                let Some(d) = next_delivery(&target, &mut ws, deadline).await else {
                    break;
                };
                if d.room != room {
                    continue; // the reference sends every room's frames to everyone
                }
                let now = now_us();
                last.fetch_max(now, Ordering::Relaxed);
                latencies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(now.saturating_sub(d.sent_us));
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                let c = seen.entry((i, d.sender, d.n)).or_insert(0);
                *c += 1;
                if *c == 1 {
                    got += 1;
                }
            }
            let _ = ws.close(None).await;
        }));
    }
    let first_send = now_us();
    // The server's memory through the run, every RSS_EVERY: it must stay
    // flat once everything is connected (an inspector's ring included).
    let (stop_sampling, sampling) = tokio::sync::watch::channel(false);
    let sampler = pid.map(|pid| tokio::spawn(sample_rss(pid, sampling)));
    let mut sending = Vec::new();
    for (room, sender, ws) in senders {
        let target = target.clone();
        sending.push(tokio::spawn(async move {
            // Each sender reads its own socket too (acks), so it never backs up.
            let (mut sink, mut stream) = ws.split();
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(b.rate.max(1))));
            for n in 0..b.count {
                tick.tick().await;
                if sink.send(target.frame(room, sender, n)).await.is_err() {
                    break;
                }
            }
            (sink, drain)
        }));
    }
    let mut open = Vec::new();
    for s in sending {
        if let Ok(pair) = s.await {
            open.push(pair);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = stop_sampling.send(true);
    let rss_mb = match sampler {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };
    for (mut sink, drain) in open {
        drain.abort();
        let _ = sink.close().await;
    }
    let expected = (b.rooms * b.members) as u64 * wanted;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let unique = seen.len() as u64;
    let total: u64 = seen.values().map(|c| u64::from(*c)).sum();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let s = summarize(&mut lat);
    let span = (last_delivery
        .load(Ordering::Relaxed)
        .saturating_sub(first_send)) as f64
        / 1e6;
    Ok(json!({
        "scenario": "broadcast", "target": target.name(), "rooms": b.rooms, "members": b.members, "senders": b.senders,
        "rate_per_s": b.rate, "sent": b.count * (b.rooms * b.senders) as u64, "expected": expected,
        "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "p99_ms": s.p99_ms, "max_ms": s.max_ms,
        "deliveries_per_s": if span > 0.0 { unique as f64 / span } else { 0.0 },
        "lost": expected - unique, "duplicate": total - unique,
        "rss_mb_every_5s": rss_mb,
    }))
}

/// How often a broadcast samples the server's RSS.
const RSS_EVERY: Duration = Duration::from_secs(5);

/// The server's RSS in MB (one decimal), at the start and every
/// [`RSS_EVERY`] until `stop`.
async fn sample_rss(pid: u32, mut stop: tokio::sync::watch::Receiver<bool>) -> Vec<f64> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(RSS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Ok(bytes) = rss_bytes(pid) {
                    samples.push((bytes as f64 / 1e5).round() / 10.0);
                }
            }
            _ = stop.changed() => return samples,
        }
    }
}

/// A process's resident set, from /proc.
fn rss_bytes(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| BenchError::Setup(format!("cannot read /proc/{pid}/status: {e}")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| BenchError::Setup("no VmRSS".into()))
}

/// `fanout`: one message at a time to a room of `n`; `repeats` times.
pub(crate) async fn fanout(target: &Target, n: usize, repeats: u64) -> Result<Value, BenchError> {
    let receivers = target.open_many(n, 50, Some(0), 0).await?;
    let sender = target.open_many(1, 1, Some(0), n).await?.remove(0);
    let (mut sink, mut stream) = sender.split();
    // The sender's acks, by message number: the ack must not wait for the
    // fan-out, so its latency should not grow with the room.
    let acks: Arc<Vec<AtomicU64>> = Arc::new((0..repeats).map(|_| AtomicU64::new(0)).collect());
    let acked = acks.clone();
    let drain = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(t) = m else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            let n = v["id"]
                .as_str()
                .and_then(|id| id.rsplit('-').next()?.parse::<usize>().ok());
            if let (true, Some(slot)) = (v["type"] == "ack", n.and_then(|n| acked.get(n))) {
                slot.store(now_us(), Ordering::Relaxed);
            }
        }
    });
    let remaining: Arc<Vec<AtomicUsize>> =
        Arc::new((0..repeats).map(|_| AtomicUsize::new(n)).collect());
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..repeats).map(|_| AtomicU64::new(0)).collect());
    let deadline = Instant::now() + Duration::from_secs(60 + repeats * 5);
    // Receivers hang up only when every message is measured: 10,000
    // disconnects landing during the last fan-out would be timed with it.
    let (finished, done) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for mut ws in receivers {
        let (target, remaining, last) = (target.clone(), remaining.clone(), last.clone());
        let mut done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < repeats {
                let Some(d) = next_delivery(&target, &mut ws, deadline).await else {
                    break;
                };
                let k = d.n;
                if let (Some(rem), Some(l)) = (remaining.get(k as usize), last.get(k as usize)) {
                    l.fetch_max(now_us(), Ordering::Relaxed);
                    rem.fetch_sub(1, Ordering::Relaxed);
                }
                got += 1;
            }
            let _ = tokio::time::timeout_at(deadline.into(), done.wait_for(|d| *d)).await;
            let _ = ws.close(None).await;
        }));
    }
    let mut times = Vec::new();
    let mut ack_times = Vec::new();
    let mut lost = 0usize;
    let mut per_message = Vec::new();
    for k in 0..repeats {
        let sent = now_us();
        if sink.send(target.frame(0, 0, k)).await.is_err() {
            break;
        }
        let wait_until = Instant::now() + Duration::from_secs(30);
        // The ack goes to another socket than the deliveries: in a small
        // room it can land after the last of them, so wait for both.
        let acks_expected = matches!(target, Target::Roomcast { .. });
        while (remaining[k as usize].load(Ordering::Relaxed) > 0
            || (acks_expected && acks[k as usize].load(Ordering::Relaxed) == 0))
            && Instant::now() < wait_until
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let missing = remaining[k as usize].load(Ordering::Relaxed);
        let took = last[k as usize]
            .load(Ordering::Relaxed)
            .saturating_sub(sent);
        lost += missing;
        let ack = acks[k as usize].load(Ordering::Relaxed).checked_sub(sent);
        per_message.push(json!({"last_ms": took as f64 / 1000.0, "lost": missing, "ack_ms": ack.map(|a| a as f64 / 1000.0)}));
        times.push(took);
        ack_times.extend(ack);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = finished.send(true);
    for t in tasks {
        let _ = t.await;
    }
    drain.abort();
    let s = summarize(&mut times);
    let a = summarize(&mut ack_times);
    Ok(json!({
        "scenario": "fanout", "target": target.name(), "members": n, "messages": repeats,
        "last_delivery_p50_ms": s.p50_ms, "last_delivery_max_ms": s.max_ms,
        "ack_p50_ms": a.p50_ms, "ack_p99_ms": a.p99_ms, "ack_max_ms": a.max_ms, "acks": ack_times.len(),
        "per_recipient_us": s.p50_ms * 1000.0 / n as f64, "lost": lost,
        "per_message": per_message,
    }))
}

/// `memory`: the server's RSS with `n` idle connections, read from /proc.
pub(crate) async fn memory(
    target: &Target,
    pid: u32,
    counts: &[usize],
) -> Result<Value, BenchError> {
    let rss = || rss_bytes(pid);
    let mut points = Vec::new();
    let mut open: Vec<Ws> = Vec::new();
    let base = rss()?;
    for &n in counts {
        if n > open.len() {
            let more = target
                .open_many(n - open.len(), 50, None, 200_000 + open.len())
                .await?;
            open.extend(more);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = rss()?;
        let per = if n > 0 {
            (now.saturating_sub(base)) as f64 / n as f64
        } else {
            0.0
        };
        points.push(json!({"connections": n, "rss_bytes": now, "bytes_per_connection": per}));
    }
    for mut ws in open {
        let _ = ws.close(None).await;
    }
    Ok(
        json!({"scenario": "memory", "target": target.name(), "baseline_rss_bytes": base, "points": points}),
    )
}

/// `coldstart`: runs `binary` `runs` times against a minimal Lambda Runtime
/// API stub on 127.0.0.1, timing exec → its first `GET .../invocation/next`
/// (init done: config read, SDK clients built). `env` is its environment.
pub(crate) async fn coldstart(
    binary: &std::path::Path,
    env: &[(String, String)],
    runs: usize,
) -> Result<Value, BenchError> {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = std::process::Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| BenchError::Setup(format!("cannot exec {}: {e}", binary.display())))?;
        let reached = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (mut sock, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let mut buf = [0u8; 512];
                let n = sock.read(&mut buf).await.map_err(|e| e.to_string())?;
                if String::from_utf8_lossy(&buf[..n]).contains("/runtime/invocation/next") {
                    return Ok::<Duration, String>(started.elapsed());
                }
            }
        })
        .await;
        let _ = child.kill();
        let _ = child.wait();
        match reached {
            Ok(Ok(d)) => samples.push(d.as_micros() as u64),
            Ok(Err(e)) => return Err(BenchError::Setup(e)),
            Err(_) => {
                return Err(BenchError::Setup(format!(
                    "{} never asked for /next",
                    binary.display()
                )));
            }
        }
    }
    let s = summarize(&mut samples);
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "scenario": "coldstart", "binary": binary.file_name().map(|n| n.to_string_lossy().into_owned()),
        "runs": runs, "init_p50_ms": s.p50_ms, "init_max_ms": s.max_ms, "binary_bytes": size,
    }))
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").finish_non_exhaustive()
    }
}
