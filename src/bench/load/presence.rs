//! `presence`: fills one room with N members who all hold the presence
//! right, 50 joins in flight, and reports how long it took and how many
//! posts the emulator made for it. Run against an emulator with the roster
//! cap (the default, 100) and one without it (the behaviour before the cap),
//! a quadratic fill shows as posts growing with N² and time with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use super::{BenchError, Target, Ws, room_name};

/// Joins in flight.
const IN_FLIGHT: usize = 50;
/// Longest wait for one join's reply. A roster over the 128 KB frame limit
/// never arrives; this bounds what that costs the run.
const JOIN_WAIT: Duration = Duration::from_secs(10);

/// What one fill counted.
#[derive(Default)]
struct Counts {
    joined: AtomicUsize,
    truncated: AtomicUsize,
    failed: AtomicUsize,
}

/// Fills bench room 0 with `n` presence members, stopping at `limit`.
/// Returns the result and the open sockets: the caller stops the server
/// before dropping them, so N departures are not measured with the next run.
pub(crate) async fn fill(
    target: &Target,
    n: usize,
    metrics_url: &str,
    limit: Duration,
) -> Result<(Value, Vec<Ws>), BenchError> {
    let http = reqwest::Client::new();
    let posts_before = posts(&http, metrics_url).await?;
    let counts = Arc::new(Counts::default());
    let open = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (target, counts, open, gate) =
            (target.clone(), counts.clone(), open.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return;
            };
            if Instant::now() >= deadline {
                return;
            }
            match join_one(&target, i).await {
                Ok((ws, truncated)) => {
                    counts.joined.fetch_add(1, Ordering::Relaxed);
                    if truncated {
                        counts.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    open.lock().unwrap_or_else(|p| p.into_inner()).push(ws);
                }
                Err(_) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed();
    let posts = posts(&http, metrics_url)
        .await?
        .saturating_sub(posts_before);
    let joined = counts.joined.load(Ordering::Relaxed);
    let sockets = std::mem::take(&mut *open.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((
        json!({
            "scenario": "presence", "target": target.name(), "members": n,
            "joined": joined, "failed": counts.failed.load(Ordering::Relaxed),
            "truncated_rosters": counts.truncated.load(Ordering::Relaxed),
            "finished": joined == n, "seconds": took.as_secs_f64(),
            "joins_per_s": joined as f64 / took.as_secs_f64(),
            "posts": posts, "posts_per_join": posts as f64 / joined.max(1) as f64,
        }),
        sockets,
    ))
}

/// Connects client `i` and joins; true if its roster came back truncated.
async fn join_one(target: &Target, i: usize) -> Result<(Ws, bool), BenchError> {
    let mut ws = target.connect(i).await?;
    ws.send(Message::text(
        json!({"action": "join", "room": room_name(0)}).to_string(),
    ))
    .await
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    let reply = tokio::time::timeout(JOIN_WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            // Other members' presence events ("event":"joined") may come
            // first; only the reply has this type.
            if t.as_str().contains(r#""type":"joined""#) {
                return serde_json::from_str::<Value>(t.as_str()).ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| BenchError::Setup(format!("no joined reply for {i}")))?;
    Ok((ws, reply["rosterTruncated"] == true))
}

/// Posts the emulator has accepted through `@connections` so far.
async fn posts(http: &reqwest::Client, metrics_url: &str) -> Result<u64, BenchError> {
    let text = http
        .get(metrics_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| BenchError::Setup(format!("metrics: {e}")))?
        .text()
        .await
        .map_err(|e| BenchError::Setup(format!("metrics: {e}")))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(r#"roomcast_connections_api_calls_total{method="POST""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum())
}
