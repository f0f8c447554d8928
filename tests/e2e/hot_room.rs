//! A hot room on the production adapter: many senders at once into one
//! room on DynamoDB (moto), with the store behind the latency model, so the
//! sequencer's windows are as wide as they are in AWS. Every acked message
//! must come out of every listener's client exactly once, in seq order,
//! and no sender may get an error frame.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::emulator::*;
use roomcast_client::{Client, ClientConfig, Event, State};
use roomcast_emulator::RunningEmulator;
use serde_json::json;

/// `roomcast latency-proxy` in front of moto; killed when dropped.
struct LatencyProxy {
    child: Child,
    endpoint: String,
}

impl LatencyProxy {
    fn start(upstream: &str, latency_ms: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["latency-proxy", "--upstream", upstream])
            .args(["--latency-ms", &latency_ms.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("roomcast latency-proxy (cargo build --workspace --bins --tests)");
        let stdout = child.stdout.take().unwrap();
        let line = BufReader::new(stdout)
            .lines()
            .next()
            .expect("the proxy printed nothing")
            .unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self {
            child,
            endpoint: format!("http://{addr}"),
        }
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open(emu: &RunningEmulator, user: &str) -> (Client, tokio::sync::mpsc::Receiver<Event>) {
    let (client, mut events) = Client::spawn(ClientConfig::new(
        emu.urls.websocket.clone(),
        dev_token(emu, user).await,
    ));
    tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if matches!(e, Event::State(State::Open { .. })) {
                return;
            }
        }
        panic!("{user}: events ended before open");
    })
    .await
    .unwrap_or_else(|_| panic!("{user}: not open in time"));
    (client, events)
}

/// Twelve senders, ten messages each, all at once, into one room whose
/// store answers in 5 ms: with an optimistic lock on the room's counter
/// most of these sends conflicted and retried; now none can.
#[tokio::test]
async fn twelve_senders_at_once_on_dynamodb_every_ack_delivered_once_in_order() {
    const SENDERS: usize = 12;
    const EACH: usize = 10;
    const LISTENERS: usize = 3;
    let proxy = LatencyProxy::start(&common::dynamodb_endpoint(), 5);
    let table = format!("roomcast-hot-{}", uuid::Uuid::new_v4().simple());
    let emu = start(config("template.yaml").dynamodb(proxy.endpoint.clone(), table, true)).await;
    let mut listeners = Vec::new();
    for i in 0..LISTENERS {
        let (client, mut events) = open(&emu, &format!("listener{i}")).await;
        client.join("hot").await.unwrap();
        tokio::time::timeout(WAIT, async {
            while let Some(e) = events.recv().await {
                if matches!(e, Event::Joined { .. }) {
                    return;
                }
            }
        })
        .await
        .expect("listener joined");
        listeners.push((client, events));
    }
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (client, events) = open(&emu, &format!("sender{s}")).await;
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..EACH {
                let ack = client
                    .send_with_id("hot", &format!("s{s}-{n}"), json!({"s": s, "n": n}))
                    .await
                    .unwrap_or_else(|e| panic!("sender {s} message {n}: {e}"));
                assert!(!ack.duplicate, "{ack:?}");
                acked.push((ack.id, ack.seq));
            }
            drop(events);
            acked
        }));
    }
    let mut acked: HashMap<String, u64> = HashMap::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    let seqs: BTreeSet<u64> = acked.values().copied().collect();
    assert_eq!(seqs.len(), SENDERS * EACH, "every ack has its own seq");
    for (i, (_client, mut events)) in listeners.into_iter().enumerate() {
        let mut heard: Vec<(String, u64)> = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), async {
            while heard.len() < acked.len() {
                match events.recv().await {
                    Some(Event::Message(m)) => heard.push((
                        m["id"].as_str().unwrap().to_owned(),
                        m["seq"].as_u64().unwrap(),
                    )),
                    Some(_) => {}
                    None => panic!("listener {i}: events ended"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("listener {i} heard {} of {}", heard.len(), acked.len()));
        let order: Vec<u64> = heard.iter().map(|(_, s)| *s).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "listener {i}: out of order or repeated: {order:?}"
        );
        for (id, seq) in &heard {
            assert_eq!(acked.get(id), Some(seq), "listener {i}: {id} at {seq}");
        }
    }
}
