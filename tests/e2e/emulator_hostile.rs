//! The emulator against hostile clients and a bad network: clients that
//! never read, half-sent requests, resets, floods during a close, oversize
//! frames. Each must leave the server healthy and other clients unaffected.
//! Every wait is bounded; everything talks to 127.0.0.1 only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::emulator::{WAIT, Ws, closed, connect, next, probe, recv, send};
use futures::{SinkExt, StreamExt};
use roomcast_emulator::RunningEmulator;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn ws_url(emu: &RunningEmulator, key: &str) -> String {
    format!("ws://{}/test?key={key}", emu.addr)
}

fn api(emu: &RunningEmulator, id: &str) -> String {
    format!("http://{}/test/@connections/{id}", emu.addr)
}

/// The connection id, from an echoed event.
async fn connection_id(ws: &mut Ws) -> String {
    send(ws, json!({"action": "echo"})).await;
    recv(ws).await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn post(http: &reqwest::Client, emu: &RunningEmulator, id: &str, body: String) -> u16 {
    http.post(api(emu, id))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get(http: &reqwest::Client, emu: &RunningEmulator, id: &str) -> u16 {
    http.get(api(emu, id))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts large frames to a client that is not reading until the server's
/// queue for it is full (429): its socket buffers are full by then.
async fn fill(http: &reqwest::Client, emu: &RunningEmulator, id: &str) {
    let big = "x".repeat(120 * 1024);
    for _ in 0..400 {
        match post(http, emu, id, big.clone()).await {
            200 => {}
            429 => return,
            other => panic!("post answered {other} while filling"),
        }
    }
    panic!("400 posts of 120 KB never filled the queue of a client that does not read");
}

/// Waits for `$disconnect` of `id`; returns its status code.
async fn disconnect_code(rec: &common::emulator::Recorder, id: &str) -> u64 {
    let e = rec
        .wait_for(&format!("$disconnect of {id}"), |e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id
        })
        .await;
    e["requestContext"]["disconnectStatusCode"]
        .as_u64()
        .unwrap()
}

/// Another client still gets service.
async fn healthy(emu: &RunningEmulator) {
    let mut ws = connect(&ws_url(emu, "healthy")).await;
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "echo");
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_after_the_write_timeout() {
    let (emu, rec) = probe(|c| {
        c.write_limits(Duration::from_millis(500), Duration::from_millis(500))
            .outbound_queue(16)
    })
    .await;
    let http = reqwest::Client::new();
    let mut ws = connect(&ws_url(&emu, "sleepy")).await;
    let id = connection_id(&mut ws).await;
    fill(&http, &emu, &id).await;
    // From here on the client reads nothing, yet the server lets it go.
    assert_eq!(disconnect_code(&rec, &id).await, 1006);
    assert_eq!(get(&http, &emu, &id).await, 410);
    assert_eq!(post(&http, &emu, &id, "more".into()).await, 410);
    healthy(&emu).await;
    drop(ws);
}

#[tokio::test]
async fn delete_and_the_idle_timer_are_served_while_a_write_is_pending() {
    let (emu, rec) = probe(|c| {
        c.write_limits(Duration::from_secs(60), Duration::from_millis(500))
            .idle_timeout(Duration::from_millis(1500))
            .outbound_queue(16)
    })
    .await;
    let http = reqwest::Client::new();
    let mut deleted = connect(&ws_url(&emu, "deleted")).await;
    let mut idle = connect(&ws_url(&emu, "idle")).await;
    let (d, i) = (
        connection_id(&mut deleted).await,
        connection_id(&mut idle).await,
    );
    fill(&http, &emu, &d).await;
    fill(&http, &emu, &i).await;
    // DELETE ends the connection at once, even with a write stuck.
    let status = http.delete(api(&emu, &d)).send().await.unwrap().status();
    assert_eq!(status.as_u16(), 204);
    assert_eq!(
        get(&http, &emu, &d).await,
        410,
        "deleted, yet still registered"
    );
    assert_eq!(disconnect_code(&rec, &d).await, 1000);
    // The idle timer fires although the writer is blocked.
    assert_eq!(disconnect_code(&rec, &i).await, 1001);
    assert_eq!(get(&http, &emu, &i).await, 410);
    healthy(&emu).await;
    drop((deleted, idle));
}

#[tokio::test]
async fn the_maximum_duration_is_served_while_a_write_is_pending() {
    let (emu, rec) = probe(|c| {
        c.write_limits(Duration::from_secs(60), Duration::from_millis(500))
            .max_connection_duration(Duration::from_millis(2500))
            .outbound_queue(16)
    })
    .await;
    let http = reqwest::Client::new();
    let mut ws = connect(&ws_url(&emu, "long")).await;
    let id = connection_id(&mut ws).await;
    fill(&http, &emu, &id).await;
    assert_eq!(disconnect_code(&rec, &id).await, 1001);
    assert_eq!(get(&http, &emu, &id).await, 410);
    drop(ws);
}

#[tokio::test]
async fn half_sent_requests_time_out_and_cannot_lock_clients_out() {
    let (emu, _) = probe(|c| c.handshake_limits(Duration::from_millis(700), 8)).await;
    let mut partial = Vec::new();
    for _ in 0..40 {
        let mut tcp = TcpStream::connect(emu.addr).await.unwrap();
        tcp.write_all(b"GET /test?key=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        partial.push(tcp);
    }
    // A real client still gets in (it waits, at most, for the half-sent
    // requests ahead of it to time out).
    let started = tokio::time::Instant::now();
    healthy(&emu).await;
    assert!(started.elapsed() < WAIT);
    // And every half-sent request was dropped by the server.
    for tcp in &mut partial {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await;
        match read {
            Ok(Ok(_)) | Ok(Err(_)) => {} // a 408 response, EOF or a reset: all end it
            Err(_) => panic!("a half-sent request was still held after {WAIT:?}"),
        }
    }
}

#[tokio::test]
async fn queued_frames_go_out_before_a_requested_close() {
    let (emu, _) = probe(|c| c).await;
    let http = reqwest::Client::new();
    for attempt in 0..40 {
        let mut ws = connect(&ws_url(&emu, "last-words")).await;
        let id = connection_id(&mut ws).await;
        for n in 0..3 {
            assert_eq!(post(&http, &emu, &id, format!("last words {n}")).await, 200);
        }
        let status = http.delete(api(&emu, &id)).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 204);
        for n in 0..3 {
            match next(&mut ws).await {
                Message::Text(t) => assert_eq!(t.as_str(), format!("last words {n}")),
                other => panic!("attempt {attempt}: frame {n} lost, got {other:?} first"),
            }
        }
        assert_eq!(closed(&mut ws).await.0, 1000, "attempt {attempt}");
    }
}

#[tokio::test]
async fn a_client_still_sending_gets_the_close_frame_not_a_reset() {
    let (emu, _) = probe(|c| c).await;
    let http = reqwest::Client::new();
    for attempt in 0..10 {
        let mut ws = connect(&ws_url(&emu, "flooder")).await;
        let id = connection_id(&mut ws).await;
        let (mut tx, mut rx) = ws.split();
        let flood = tokio::spawn(async move {
            for _ in 0..100_000 {
                let frame =
                    Message::text(json!({"action": "silent", "pad": "p".repeat(512)}).to_string());
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = http.delete(api(&emu, &id)).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 204);
        let code = loop {
            match tokio::time::timeout(WAIT, rx.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
                Some(Ok(_)) => continue,
                other => panic!("attempt {attempt}: no close frame, got {other:?}"),
            }
        };
        assert_eq!(code, 1000, "attempt {attempt}");
        flood.abort();
    }
    healthy(&emu).await;
}

#[tokio::test]
async fn an_oversize_frame_is_answered_with_1009_every_time() {
    let (emu, rec) = probe(|c| c).await;
    for attempt in 0..10 {
        let mut ws = connect(&ws_url(&emu, "oversize")).await;
        let id = connection_id(&mut ws).await;
        // One 200 KB frame: over both the frame and the message limit.
        ws.send(Message::text("x".repeat(200 * 1024)))
            .await
            .unwrap();
        let code = loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
                Some(Ok(_)) => continue,
                other => panic!("attempt {attempt}: no close frame, got {other:?}"),
            }
        };
        assert_eq!(code, 1009, "attempt {attempt}");
        assert_eq!(disconnect_code(&rec, &id).await, 1009);
    }
}

/// A raw-TCP WebSocket client and its connection id.
async fn raw_client(
    emu: &RunningEmulator,
) -> (tokio_tungstenite::WebSocketStream<TcpStream>, String) {
    let tcp = TcpStream::connect(emu.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url(emu, "vanish"), tcp)
        .await
        .unwrap();
    ws.send(Message::text(json!({"action": "echo"}).to_string()))
        .await
        .unwrap();
    let id = loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            break v["requestContext"]["connectionId"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    };
    (ws, id)
}

#[tokio::test]
async fn a_vanished_client_reaches_disconnect_as_1006() {
    let (emu, rec) = probe(|c| c).await;
    // A reset with no close frame: SO_LINGER 0, then drop.
    let (ws, reset) = raw_client(&emu).await;
    #[allow(deprecated)] // blocking on drop is the point: it sends the reset
    ws.get_ref().set_linger(Some(Duration::ZERO)).unwrap();
    drop(ws);
    assert_eq!(disconnect_code(&rec, &reset).await, 1006);
    // A TCP close (FIN) with no close frame.
    let (ws, fin) = raw_client(&emu).await;
    let mut tcp = ws.into_inner();
    tcp.shutdown().await.unwrap();
    assert_eq!(disconnect_code(&rec, &fin).await, 1006);
    for e in rec.of_type("DISCONNECT") {
        assert_eq!(
            e["requestContext"]["disconnectReason"],
            "Connection was closed abnormally"
        );
    }
    drop(tcp);
}

#[tokio::test]
async fn route_selection_stringifies_the_selected_value() {
    let (emu, _) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "numbers")).await;
    send(&mut ws, json!({"action": 5})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "5");
    send(&mut ws, json!({"action": "5"})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "5");
    // An object is not a route key: no route, and this template has no $default.
    send(&mut ws, json!({"action": {"x": 5}})).await;
    assert_eq!(recv(&mut ws).await["message"], "Forbidden");
}

#[tokio::test]
async fn a_post_over_32_kb_arrives_as_one_message_in_frames_of_at_most_32_kb() {
    let (emu, _) = probe(|c| c).await;
    // This client refuses any frame over 32 KB, as a strict peer may.
    let config = WebSocketConfig::default().max_frame_size(Some(32 * 1024));
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(ws_url(&emu, "big"), Some(config), false)
            .await
            .unwrap();
    let id = connection_id(&mut ws).await;
    let text: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        + "é✓";
    let http = reqwest::Client::new();
    assert_eq!(post(&http, &emu, &id, text.clone()).await, 200);
    match next(&mut ws).await {
        Message::Text(t) => assert_eq!(t.as_str(), text),
        other => panic!("expected one text message, got {other:?}"),
    }
    let binary: Vec<u8> = (0..70_000u32)
        .map(|i| (i % 251) as u8)
        .chain([0xff, 0xfe])
        .collect();
    let status = http
        .post(api(&emu, &id))
        .body(binary.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    match next(&mut ws).await {
        Message::Binary(b) => assert_eq!(&b[..], &binary[..]),
        other => panic!("expected one binary message, got {other:?}"),
    }
}
