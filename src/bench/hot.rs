//! `hot-room`: many senders into one room at once. Each sender has its own
//! connection and user; a listener follows the room through the Rust
//! client (which orders by seq, waits out holes and resumes), and every
//! acked message must come out of it exactly once, in seq order.
//!
//! Closed loop: each sender sends its next message when the previous one is
//! answered. Open loop: each sender sends on a fixed schedule whatever the
//! answers do, and an ack's latency counts from its scheduled time, so a
//! backlog shows in the figures instead of slowing the offered load.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use roomcast_client::{Client, ClientConfig, Event};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::load::{BenchError, Tokens, Ws, summarize};

/// How long any one answer, join or drain may take before the run gives
/// up on it: a deadlock detector, far past any healthy figure.
const PATIENCE: Duration = Duration::from_secs(60);

/// How the senders offer load.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Each sender waits for its answer before the next send.
    Closed,
    /// Each sender sends at this many messages per second.
    Open(f64),
}

/// One run of the scenario.
#[derive(Clone, Debug)]
pub(crate) struct HotRun {
    /// Concurrent senders, each on its own connection.
    pub(crate) senders: usize,
    /// Closed or open loop.
    pub(crate) mode: Mode,
    /// How long the senders send.
    pub(crate) seconds: u64,
    /// A room of its own, so runs never see each other's messages.
    pub(crate) room: String,
}

/// What one sender saw.
#[derive(Default)]
struct SenderResult {
    acked: Vec<String>,
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// The senders still measuring. A sender that is done keeps its socket
/// open (and read) until every other one is done too: its `$disconnect`
/// would otherwise compete at the store with the others' last sends, and
/// the run would measure its own teardown.
struct Measuring {
    left: AtomicUsize,
    all_done: Notify,
}

impl Measuring {
    fn new(senders: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(senders),
            all_done: Notify::new(),
        })
    }

    /// Counts one sender out; dropped on every path, errors included.
    fn done(self: &Arc<Self>) -> Done {
        Done(Some(self.clone()))
    }

    /// Reads and drops what `rx` receives until every sender is done (or
    /// the socket ends).
    async fn linger<S>(&self, rx: &mut S)
    where
        S: futures::Stream + Unpin,
    {
        loop {
            let all_done = self.all_done.notified();
            if self.left.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::select! {
                () = all_done => return,
                m = rx.next() => if m.is_none() { return },
            }
        }
    }
}

/// A sender's place in [`Measuring`], given up once.
struct Done(Option<Arc<Measuring>>);

impl Done {
    fn now(&mut self) {
        if let Some(m) = self.0.take()
            && m.left.fetch_sub(1, Ordering::AcqRel) == 1
        {
            m.all_done.notify_waiters();
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        self.now();
    }
}

/// What the listener saw, in the order the client emitted it.
#[derive(Default)]
struct Heard {
    seqs: Vec<u64>,
    ids: HashMap<String, u32>,
}

/// Runs `run` against the Roomcast endpoint `url`; one JSON result.
pub(crate) async fn hot_room(
    name: &str,
    url: &str,
    tokens: &Tokens,
    run: &HotRun,
) -> Result<Value, BenchError> {
    let (listener, heard, heard_more) = listen(url, tokens, &run.room).await?;
    let mut sockets = Vec::with_capacity(run.senders);
    for i in 0..run.senders {
        sockets.push(join(url, tokens, 1 + i, &run.room).await?);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(run.seconds);
    let (mode, senders) = (run.mode, run.senders);
    let measuring = Measuring::new(senders);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let room = run.room.clone();
            let measuring = measuring.clone();
            tokio::spawn(async move {
                match run_mode(mode, ws, &room, (i, senders), deadline, &measuring).await {
                    Ok(r) => r,
                    Err(e) => SenderResult {
                        errors: BTreeMap::from([(e.to_string(), 1)]),
                        ..SenderResult::default()
                    },
                }
            })
        })
        .collect();
    let mut total = SenderResult::default();
    for t in tasks {
        let r = t
            .await
            .map_err(|e| BenchError::Setup(format!("sender task: {e}")))?;
        total.acked.extend(r.acked);
        total.latencies_us.extend(r.latencies_us);
        for (code, n) in r.errors {
            *total.errors.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let drained = drain(&heard, &heard_more, &total.acked).await;
    listener.close().await;
    let heard = std::mem::take(&mut *heard.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(report(name, run, elapsed, total, &heard, drained))
}

/// Runs sender `me.0` of `me.1`.
async fn run_mode(
    mode: Mode,
    ws: Ws,
    room: &str,
    me: (usize, usize),
    deadline: Instant,
    measuring: &Arc<Measuring>,
) -> Result<SenderResult, BenchError> {
    let done = measuring.done();
    match mode {
        Mode::Closed => closed(ws, room, me.0, deadline, (measuring, done)).await,
        Mode::Open(rate) => open(ws, room, me, deadline, rate, (measuring, done)).await,
    }
}

/// Joins `room` through the Rust client and records what it emits.
async fn listen(
    url: &str,
    tokens: &Tokens,
    room: &str,
) -> Result<(Client, Arc<Mutex<Heard>>, Arc<Notify>), BenchError> {
    let (client, mut events) = Client::spawn(ClientConfig::new(url, tokens(0)));
    client
        .join(room)
        .await
        .map_err(|e| BenchError::Setup(format!("listener join: {e}")))?;
    tokio::time::timeout(PATIENCE, async {
        while let Some(e) = events.recv().await {
            if matches!(&e, Event::Joined { room: r, .. } if r == room) {
                return Ok(());
            }
        }
        Err(BenchError::Setup("listener stopped before joining".into()))
    })
    .await
    .map_err(|_| BenchError::Setup("listener join timed out".into()))??;
    let heard = Arc::new(Mutex::new(Heard::default()));
    let more = Arc::new(Notify::new());
    let (h, m) = (heard.clone(), more.clone());
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let Event::Message(v) = e {
                let mut heard = h.lock().unwrap_or_else(|p| p.into_inner());
                heard.seqs.push(v["seq"].as_u64().unwrap_or(0));
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                *heard.ids.entry(id).or_default() += 1;
                m.notify_one();
            }
        }
    });
    Ok((client, heard, more))
}

/// A raw socket for sender `i`, joined to `room`.
async fn join(url: &str, tokens: &Tokens, i: usize, room: &str) -> Result<Ws, BenchError> {
    let (mut ws, _) = tokio::time::timeout(
        PATIENCE,
        tokio_tungstenite::connect_async(format!("{url}?token={}", tokens(i))),
    )
    .await
    .map_err(|_| BenchError::Setup(format!("sender {i}: connect timed out")))?
    .map_err(|e| BenchError::Setup(format!("sender {i}: {e}")))?;
    send_text(&mut ws, json!({"action": "join", "room": room, "ref": 0})).await?;
    tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Some(v) = parse(&m)
                && v["type"] == "joined"
            {
                return Ok(());
            }
        }
        Err(BenchError::Setup(format!(
            "sender {i}: closed before joined"
        )))
    })
    .await
    .map_err(|_| BenchError::Setup(format!("sender {i}: join timed out")))??;
    Ok(ws)
}

async fn send_text(ws: &mut Ws, v: Value) -> Result<(), BenchError> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))
}

fn parse(m: &Message) -> Option<Value> {
    match m {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}

fn frame(room: &str, sender: usize, n: u64) -> Value {
    json!({
        "action": "send", "room": room, "id": format!("h{sender}-{n}"), "ref": n,
        "data": {"s": sender, "n": n},
    })
}

/// What an answer to one of this sender's frames says.
enum Answer {
    Ack(String),
    Error { reference: u64, code: String },
}

fn answer(v: &Value) -> Option<Answer> {
    match v["type"].as_str()? {
        "ack" => Some(Answer::Ack(v["id"].as_str()?.to_owned())),
        "error" => Some(Answer::Error {
            reference: v["ref"].as_u64()?,
            code: v["code"].as_str().unwrap_or("unknown").to_owned(),
        }),
        _ => None,
    }
}

async fn closed(
    mut ws: Ws,
    room: &str,
    sender: usize,
    deadline: Instant,
    (measuring, mut done): (&Measuring, Done),
) -> Result<SenderResult, BenchError> {
    let mut r = SenderResult::default();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let id = format!("h{sender}-{n}");
        let t0 = Instant::now();
        send_text(&mut ws, frame(room, sender, n)).await?;
        let got = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(m)) = ws.next().await {
                match parse(&m).as_ref().and_then(answer) {
                    Some(Answer::Ack(a)) if a == id => return Some(None),
                    Some(Answer::Error { reference, code }) if reference == n => {
                        return Some(Some(code));
                    }
                    _ => {}
                }
            }
            None
        })
        .await;
        match got {
            Ok(Some(None)) => {
                r.latencies_us.push(t0.elapsed().as_micros() as u64);
                r.acked.push(id);
            }
            Ok(Some(Some(code))) => *r.errors.entry(code).or_default() += 1,
            Ok(None) => return Err(BenchError::Setup("socket closed".into())),
            Err(_) => *r.errors.entry("no_answer".into()).or_default() += 1,
        }
    }
    done.now();
    measuring.linger(&mut ws).await;
    let _ = ws.close(None).await;
    Ok(r)
}

async fn open(
    ws: Ws,
    room: &str,
    (sender, senders): (usize, usize),
    deadline: Instant,
    rate: f64,
    (measuring, mut done): (&Measuring, Done),
) -> Result<SenderResult, BenchError> {
    let (mut tx, mut rx) = ws.split();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    // Senders take turns: together they send every interval / senders, so
    // the total rate holds even when one sender's own interval is longer
    // than the run.
    let offset = interval.mul_f64(sender as f64 / senders.max(1) as f64);
    let due = move |n: u64| start + offset + interval.mul_f64((n - 1) as f64);
    let span = (deadline - start).saturating_sub(offset).as_secs_f64();
    let count = if deadline > start + offset {
        (span * rate).ceil() as u64
    } else {
        0
    };
    let room = room.to_owned();
    let writer = tokio::spawn(async move {
        for n in 1..=count {
            tokio::time::sleep_until(due(n)).await;
            if tx
                .send(Message::text(frame(&room, sender, n).to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut r = SenderResult::default();
    let mut open: HashSet<u64> = (1..=count).collect();
    let give_up = deadline + PATIENCE;
    while !open.is_empty() {
        let Ok(Some(Ok(m))) = tokio::time::timeout_at(give_up, rx.next()).await else {
            break;
        };
        let (n, outcome) = match parse(&m).as_ref().and_then(answer) {
            Some(Answer::Ack(id)) => match id.rsplit('-').next().and_then(|n| n.parse().ok()) {
                Some(n) if id.starts_with(&format!("h{sender}-")) => (n, None),
                _ => continue,
            },
            Some(Answer::Error { reference, code }) => (reference, Some(code)),
            None => continue,
        };
        if !open.remove(&n) {
            continue;
        }
        match outcome {
            None => {
                r.latencies_us
                    .push(Instant::now().saturating_duration_since(due(n)).as_micros() as u64);
                r.acked.push(format!("h{sender}-{n}"));
            }
            Some(code) => *r.errors.entry(code).or_default() += 1,
        }
    }
    if !open.is_empty() {
        *r.errors.entry("no_answer".into()).or_default() += open.len() as u64;
    }
    done.now();
    measuring.linger(&mut rx).await;
    writer.abort();
    Ok(r)
}

/// Waits until the listener has emitted every acked id, or gives up after
/// [`PATIENCE`]. Returns whether it got them all.
async fn drain(heard: &Arc<Mutex<Heard>>, more: &Notify, acked: &[String]) -> bool {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let notified = more.notified();
        let missing = {
            let h = heard.lock().unwrap_or_else(|p| p.into_inner());
            acked.iter().filter(|id| !h.ids.contains_key(*id)).count()
        };
        if missing == 0 {
            return true;
        }
        if tokio::time::timeout_at(give_up, notified).await.is_err() {
            return false;
        }
    }
}

fn report(
    name: &str,
    run: &HotRun,
    elapsed: f64,
    mut total: SenderResult,
    heard: &Heard,
    drained: bool,
) -> Value {
    let lost = total
        .acked
        .iter()
        .filter(|id| !heard.ids.contains_key(*id))
        .count();
    let duplicates: u32 = heard.ids.values().map(|n| n - 1).sum();
    let (mut holes, mut out_of_order) = (0u64, 0u64);
    for w in heard.seqs.windows(2) {
        if w[1] <= w[0] {
            out_of_order += 1;
        } else {
            holes += w[1] - w[0] - 1;
        }
    }
    let s = summarize(&mut total.latencies_us);
    let (mode, offered) = match run.mode {
        Mode::Closed => ("closed", Value::Null),
        Mode::Open(rate) => ("open", json!(rate * run.senders as f64)),
    };
    json!({
        "scenario": "hot-room", "target": name, "mode": mode, "senders": run.senders,
        "offered_per_s": offered, "seconds": run.seconds,
        "acks": total.acked.len(), "acks_per_s": total.acked.len() as f64 / elapsed.max(0.001),
        "ack_p50_ms": s.p50_ms, "ack_p99_ms": s.p99_ms, "ack_max_ms": s.max_ms,
        "errors": total.errors, "lost": lost, "duplicates": duplicates,
        "holes": holes, "out_of_order": out_of_order, "drained": drained,
        "heard": heard.seqs.len(),
    })
}
