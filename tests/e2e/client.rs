//! roomcast-client and the `roomcast listen/send/token` commands against the
//! emulator, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::emulator::*;
use roomcast_client::{Client, ClientConfig, ClientError, Event, State};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

async fn open_id(events: &mut Receiver<Event>) -> String {
    match next_event(events, "open", |e| {
        matches!(e, Event::State(State::Open { .. }))
    })
    .await
    {
        Event::State(State::Open { connection_id }) => connection_id,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn the_client_reconnects_after_a_forced_close_and_resumes_without_gaps_or_duplicates() {
    let emu = start(config("template.yaml")).await;
    let url = emu.urls.websocket.clone();
    let (reader, mut events) = Client::spawn(ClientConfig::new(
        url.clone(),
        dev_token(&emu, "reader").await,
    ));
    let (writer, mut writer_events) =
        Client::spawn(ClientConfig::new(url, dev_token(&emu, "writer").await));
    let first_id = open_id(&mut events).await;
    open_id(&mut writer_events).await;
    reader.join("r").await.unwrap();
    next_event(&mut events, "joined", |e| matches!(e, Event::Joined { .. })).await;
    assert_eq!(writer.send("r", json!({"n": 1})).await.unwrap().seq, 1);

    let api = management(&emu.urls.management).await;
    api.delete_connection()
        .connection_id(&first_id)
        .send()
        .await
        .unwrap();
    for n in 2..=6 {
        writer.send("r", json!({"n": n})).await.unwrap();
    }
    let mut second_id = None;
    let mut seqs = Vec::new();
    while seqs.len() < 6 || second_id.is_none() {
        match next_event(&mut events, "messages and the reconnect", |e| {
            matches!(e, Event::Message(_) | Event::State(State::Open { .. }))
        })
        .await
        {
            Event::Message(m) => seqs.push(m["seq"].as_u64().unwrap()),
            Event::State(State::Open { connection_id }) => second_id = Some(connection_id),
            _ => unreachable!(),
        }
    }
    assert_ne!(Some(first_id), second_id, "a new connection");
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6], "every message once, in order");
    // The reader's own send after the resume continues the sequence.
    let ack = reader.send("r", json!("back")).await.unwrap();
    assert_eq!(ack.seq, 7);
    // A retry of a known id is a duplicate, with the original seq.
    let again = writer
        .send_with_id("r", "fixed-id", json!(1))
        .await
        .unwrap();
    let dup = writer
        .send_with_id("r", "fixed-id", json!(1))
        .await
        .unwrap();
    assert_eq!((dup.seq, dup.duplicate), (again.seq, true));
}

#[tokio::test]
async fn a_refused_handshake_stops_the_client_instead_of_hammering() {
    let emu = start(config("template.yaml")).await;
    let (_client, mut events) =
        Client::spawn(ClientConfig::new(emu.urls.websocket.clone(), "not-a-token"));
    let e = next_event(&mut events, "unauthorized", |e| {
        matches!(e, Event::Error(_))
    })
    .await;
    assert_eq!(e, Event::Error(ClientError::Unauthorized(403)));
    next_event(&mut events, "closed", |e| {
        matches!(e, Event::State(State::Closed { .. }))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = metrics(&emu).await;
    assert!(
        metrics.contains("roomcast_connects_total{status=\"403\"} 1\n"),
        "exactly one attempt:\n{metrics}"
    );
}

fn roomcast(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    cmd.args(args).env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn the_cli_gets_tokens_sends_and_listens() {
    let emu = start(config("template.yaml")).await;
    let url = emu.urls.websocket.clone();
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            roomcast(&["token", "--user", "cli-test", "--url", &url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    let mut listener = roomcast(&[
        "listen", "--room", "cli", "--url", &url, "--user", "listener",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = listener.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        lines.next().map(|l| l.unwrap())
    });
    // Give the listener time to join, then send until it has heard one.
    let mut acks = Vec::new();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let url = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            roomcast(&[
                "send",
                "--room",
                "cli",
                "--data",
                &format!("{{\"n\":{i}}}"),
                "--url",
                &url,
            ])
            .output()
            .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        let ack: Value = serde_json::from_slice(&out.stdout).unwrap();
        acks.push(ack["seq"].as_u64().unwrap());
        if lines.is_finished() {
            break;
        }
    }
    let line = tokio::time::timeout(WAIT, lines)
        .await
        .expect("a line")
        .unwrap()
        .expect("output");
    let heard: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(heard["room"], "cli");
    assert!(
        acks.contains(&heard["seq"].as_u64().unwrap()),
        "{heard} among {acks:?}"
    );
    listener.kill().unwrap();
    let _ = listener.wait();
    let bad = roomcast(&[
        "send",
        "--room",
        "cli",
        "--data",
        "{not json",
        "--url",
        &url,
    ])
    .output()
    .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--data is not JSON"));
}

#[tokio::test]
async fn sends_issued_together_keep_the_senders_order() {
    let emu = start(config("template.yaml")).await;
    let (client, mut events) = Client::spawn(ClientConfig::new(
        emu.urls.websocket.clone(),
        dev_token(&emu, "fast").await,
    ));
    open_id(&mut events).await;
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let sends: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| client.send_with_id("order", id, json!(i)))
        .collect();
    let acks = futures::future::join_all(sends).await;
    let seqs: Vec<u64> = acks.into_iter().map(|a| a.unwrap().seq).collect();
    assert_eq!(
        seqs,
        (1..=10).collect::<Vec<u64>>(),
        "stored in the order they were sent"
    );
}

/// The issue's end-to-end check, on the DynamoDB adapter (moto): listeners
/// re-joining (forced reconnects with resume) while three writers race on
/// one room's seq. Every listener must deliver every message exactly once,
/// in seq order: 0 lost, 0 duplicates.
#[tokio::test]
async fn listeners_rejoining_under_load_on_dynamodb_lose_nothing_and_see_no_duplicates() {
    use std::sync::{Arc, Mutex};
    const WRITERS: u64 = 3;
    const PER_WRITER: u64 = 25;
    const LISTENERS: usize = 5;
    let total = WRITERS * PER_WRITER;
    let table = format!("roomcast-rejoin-{}", uuid::Uuid::new_v4().simple());
    let emu =
        start(config("template.yaml").dynamodb(common::dynamodb_endpoint(), table, true)).await;
    let url = emu.urls.websocket.clone();
    let current: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(vec![None; LISTENERS]));
    let mut listeners = Vec::new();
    let mut joined = Vec::new();
    for i in 0..LISTENERS {
        let (client, mut events) = Client::spawn(ClientConfig::new(
            url.clone(),
            dev_token(&emu, &format!("listener{i}")).await,
        ));
        let id = open_id(&mut events).await;
        current.lock().unwrap()[i] = Some(id);
        client.join("race").await.unwrap();
        next_event(&mut events, "joined", |e| matches!(e, Event::Joined { .. })).await;
        let current = current.clone();
        joined.push(client);
        listeners.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            while (seqs.len() as u64) < total {
                let e = tokio::time::timeout_at(deadline, events.recv())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "listener {i} stalled at {} of {total}: {seqs:?}",
                            seqs.len()
                        )
                    })
                    .expect("events");
                match e {
                    Event::Message(m) => seqs.push(m["seq"].as_u64().unwrap()),
                    Event::State(State::Open { connection_id }) => {
                        current.lock().unwrap()[i] = Some(connection_id);
                    }
                    _ => {}
                }
            }
            // Anything more would be a duplicate.
            let extra = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    if let Some(Event::Message(m)) = events.recv().await {
                        return m;
                    }
                }
            })
            .await;
            assert!(extra.is_err(), "listener {i} got a duplicate: {extra:?}");
            seqs
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, mut events) = Client::spawn(ClientConfig::new(
            url.clone(),
            dev_token(&emu, &format!("writer{w}")).await,
        ));
        open_id(&mut events).await;
        writers.push(tokio::spawn(async move {
            for n in 0..PER_WRITER {
                client.send("race", json!({"w": w, "n": n})).await.unwrap();
            }
            drop(events);
        }));
    }
    // Meanwhile, force listeners to reconnect and resume, one after another.
    let api = management(&emu.urls.management).await;
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let id = current.lock().unwrap()[round % LISTENERS].clone();
        if let Some(id) = id {
            let _ = api.delete_connection().connection_id(id).send().await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    for (i, l) in listeners.into_iter().enumerate() {
        let seqs = l.await.unwrap();
        assert_eq!(
            seqs,
            (1..=total).collect::<Vec<_>>(),
            "listener {i}: lost, duplicated or out of order"
        );
    }
    drop(joined);
}

/// Ephemeral data through the Rust client: sent at once, received as an
/// `ephemeral` frame by the other member, no seq, nothing in history; not
/// queued while the connection is down.
#[tokio::test]
async fn ephemeral_sends_reach_the_room_with_no_seq_and_are_never_queued() {
    let emu = start(config("template.yaml")).await;
    let url = emu.urls.websocket.clone();
    let (alice, mut alice_events) = Client::spawn(ClientConfig::new(
        url.clone(),
        dev_token(&emu, "alice").await,
    ));
    let (bob, mut bob_events) = Client::spawn(ClientConfig::new(url, dev_token(&emu, "bob").await));
    open_id(&mut alice_events).await;
    open_id(&mut bob_events).await;
    bob.join("canvas").await.unwrap();
    next_event(&mut bob_events, "joined", |e| {
        matches!(e, Event::Joined { .. })
    })
    .await;
    alice
        .send_ephemeral("canvas", json!({"x": 1, "y": 2}))
        .await
        .unwrap();
    let got = next_event(&mut bob_events, "the ephemeral frame", |e| {
        matches!(
            e,
            Event::Frame(roomcast_protocol::ServerFrame::Ephemeral { .. })
        )
    })
    .await;
    let Event::Frame(roomcast_protocol::ServerFrame::Ephemeral {
        room, from, data, ..
    }) = got
    else {
        unreachable!()
    };
    assert_eq!((room.as_str(), from.user.as_str()), ("canvas", "alice"));
    assert_eq!(data, json!({"x": 1, "y": 2}));
    // Nothing was stored: a stored message sent now gets seq 1.
    let ack = alice.send("canvas", json!("stored")).await.unwrap();
    assert_eq!(ack.seq, 1);
    alice.close().await;
    assert_eq!(
        alice.send_ephemeral("canvas", json!({"x": 3})).await,
        Err(ClientError::Closed)
    );
}

#[tokio::test]
async fn an_ephemeral_send_while_reconnecting_fails_at_once_instead_of_queueing() {
    // A port with nothing behind it: the client keeps reconnecting.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (client, mut events) = Client::spawn(ClientConfig::new(format!("ws://{addr}/prod"), "t"));
    next_event(&mut events, "reconnecting", |e| {
        matches!(e, Event::State(State::Reconnecting { .. }))
    })
    .await;
    assert_eq!(
        client.send_ephemeral("canvas", json!({"x": 1})).await,
        Err(ClientError::NotConnected)
    );
    client.close().await;
}

/// An emulator restarted on its memory store loses every room's stream;
/// the new one reuses seqs the client has delivered. The epoch tells the
/// client: it says `Restarted` and delivers the new stream from seq 1
/// (without epochs it dropped seqs 1–3 as already seen).
#[tokio::test]
async fn the_client_follows_a_room_whose_stream_started_again() {
    let first = start(config("template.yaml")).await;
    let addr = first.addr;
    let url = first.urls.websocket.clone();
    let quick = |token: String| {
        let mut c = ClientConfig::new(url.clone(), token);
        c.backoff_base = Duration::from_millis(20);
        c.backoff_cap = Duration::from_millis(200);
        c
    };
    let (reader, mut events) = Client::spawn(quick(dev_token(&first, "reader").await));
    let (writer, mut writer_events) = Client::spawn(quick(dev_token(&first, "writer").await));
    open_id(&mut events).await;
    open_id(&mut writer_events).await;
    reader.join("r").await.unwrap();
    next_event(&mut events, "joined", |e| matches!(e, Event::Joined { .. })).await;
    for n in 1..=3 {
        writer.send("r", json!({"before": n})).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let Event::Message(m) = next_event(&mut events, "the first stream", |e| {
            matches!(e, Event::Message(_))
        })
        .await
        {
            seen.push(m);
        }
    }
    let old_epoch = seen[0]["epoch"].as_str().unwrap().to_owned();
    first.shutdown().await;
    let second = start(config("template.yaml").addr(addr)).await;
    for n in 1..=3 {
        let ack = writer.send("r", json!({"after": n})).await.unwrap();
        assert_eq!(ack.seq, n, "the new stream starts at 1");
    }
    let restarted = next_event(&mut events, "the restart", |e| {
        matches!(e, Event::Restarted { .. })
    })
    .await;
    let Event::Restarted { room, epoch } = restarted else {
        unreachable!()
    };
    assert_eq!(room, "r");
    assert_ne!(epoch, old_epoch);
    let mut after = Vec::new();
    while after.len() < 3 {
        if let Event::Message(m) = next_event(&mut events, "the new stream", |e| {
            matches!(e, Event::Message(_))
        })
        .await
        {
            after.push((m["seq"].as_u64().unwrap(), m["data"]["after"].as_u64()));
        }
    }
    assert_eq!(after, vec![(1, Some(1)), (2, Some(2)), (3, Some(3))]);
    drop(second);
}
