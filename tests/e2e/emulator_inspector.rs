//! The inspector's API (docs/inspector.md): the timeline keeps invocations
//! and connects always, frames and posts while an inspector watches; the
//! live stream links a frame to its invocation by request id; the ring is
//! bounded; the open connections are listed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::emulator::*;
use roomcast_emulator::RunningEmulator;
use serde_json::{Value, json};

async fn timeline(emu: &RunningEmulator) -> Vec<Value> {
    dev_api_json(emu, "timeline").await["entries"]
        .as_array()
        .unwrap()
        .clone()
}

async fn alice(emu: &RunningEmulator) -> (Ws, String) {
    connect_with_token(emu, &dev_token(emu, "alice").await).await
}

/// Alice in `lobby`, having said "hi" there (acked).
async fn alice_said_hi(emu: &RunningEmulator) -> (Ws, String) {
    let token = dev_token(emu, "alice").await;
    let (mut ws, id) = join_with_token(emu, &token, "lobby").await;
    send(
        &mut ws,
        json!({"action": "send", "room": "lobby", "id": "m1", "data": "hi"}),
    )
    .await;
    recv_type(&mut ws, "ack").await;
    (ws, id)
}

#[tokio::test]
async fn unwatched_the_timeline_keeps_invocations_not_frames_and_stays_bounded() {
    let emu = start(config("template.yaml").timeline_size(10)).await;
    let (mut ws, id) = alice(&emu).await;
    let kinds: Vec<String> = timeline(&emu)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"connect".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"invoke".to_owned()), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k.starts_with("frame")),
        "no frames unwatched: {kinds:?}"
    );
    // Within the rate limit's burst: every heartbeat is answered.
    for _ in 0..15 {
        send(&mut ws, json!({"action": "heartbeat"})).await;
        recv_type(&mut ws, "pong").await;
    }
    let kept = timeline(&emu).await;
    assert_eq!(kept.len(), 10, "the ring keeps its size");
    let ids: Vec<u64> = kept.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert!(metrics(&emu).await.contains("roomcast_timeline_entries 10"));
    let listed = dev_api_json(&emu, "connections").await;
    assert_eq!(listed["connections"][0]["connectionId"], id.as_str());
    assert_eq!(listed["connections"][0]["user"], "alice");
    emu.shutdown().await;
}

#[tokio::test]
async fn watched_a_frame_and_its_invocation_share_a_request_id_on_the_live_stream() {
    let emu = start(config("template.yaml")).await;
    let mut stream = reqwest::get(format!("http://{}/_roomcast/timeline/stream", emu.addr))
        .await
        .unwrap();
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // The stream's first bytes: from now on the inspector is watching.
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with(": watching"));
    let (mut ws, id) = alice(&emu).await;
    send(&mut ws, json!({"action": "heartbeat", "ref": "hb"})).await;
    recv_type(&mut ws, "pong").await;
    let (frame, invoke) = from_timeline(&mut stream, |seen| {
        let frame = seen
            .iter()
            .find(|e| e["kind"] == "frame-in" && e["text"].as_str().unwrap().contains("\"hb\""))?;
        let pong = seen
            .iter()
            .any(|e| e["kind"] == "frame-out" && e["text"].as_str().unwrap().contains("pong"));
        let invoke = seen
            .iter()
            .find(|e| e["kind"] == "invoke" && e["requestId"] == frame["requestId"])?;
        pong.then(|| (frame.clone(), invoke.clone()))
    })
    .await;
    assert_eq!(frame["connectionId"], id.as_str());
    assert_eq!(frame["user"], "alice");
    assert_eq!(invoke["function"], "MessageFunction");
    assert_eq!(invoke["outcome"], "ok");
    assert_eq!(invoke["mode"], "in-process");
    drop(stream);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_inspector_page_is_served_at_its_own_path() {
    let emu = start(config("template.yaml")).await;
    let r = reqwest::get(format!("http://{}/_roomcast/", emu.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Roomcast inspector"));
    emu.shutdown().await;
}

#[tokio::test]
async fn an_invocation_replays_with_an_edited_event() {
    let emu = start(config("template.yaml")).await;
    let mut stream = watch(&emu).await;
    let (mut ws, _) = alice(&emu).await;
    send(&mut ws, json!({"action": "heartbeat", "ref": "first"})).await;
    recv_type(&mut ws, "pong").await;
    // The invocation, with its event, on the timeline.
    let invoke = from_timeline(&mut stream, |seen| {
        seen.iter()
            .find(|e| {
                e["kind"] == "invoke"
                    && e["event"]["body"]
                        .as_str()
                        .is_some_and(|b| b.contains("\"first\""))
            })
            .cloned()
    })
    .await;
    let mut event = invoke["event"].clone();
    event["body"] = json!(r#"{"action":"heartbeat","ref":"again"}"#);
    let http = reqwest::Client::new();
    let replay = |body: Value| {
        http.post(format!("http://{}/_roomcast/replay", emu.addr))
            .json(&body)
            .send()
    };
    let r = replay(json!({"function": invoke["function"], "event": event}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    let reply: Value = serde_json::from_str(answer["result"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["type"], "pong");
    assert_eq!(reply["ref"], "again");
    let unknown = replay(json!({"function": "Nope", "event": {}}))
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let bad = replay(json!({"event": {}})).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    drop(stream);
    emu.shutdown().await;
}

#[tokio::test]
async fn rooms_show_their_members_seq_and_last_messages() {
    let emu = start(config("template.yaml")).await;
    let (_ws, id) = alice_said_hi(&emu).await;
    let v = dev_api_json(&emu, "rooms").await;
    let room = &v["rooms"][0];
    assert_eq!(room["room"], "lobby");
    assert_eq!(room["memberCount"], 1);
    assert_eq!(room["seq"], 1);
    assert_eq!(room["members"][0]["connectionId"], id.as_str());
    assert_eq!(room["members"][0]["user"], "alice");
    assert_eq!(room["recent"][0]["data"], "hi");
    emu.shutdown().await;
}

#[tokio::test]
async fn connections_show_their_rooms_frames_queue_and_authorizer_context() {
    let emu = start(config("template.yaml")).await;
    let (_ws, id) = alice_said_hi(&emu).await;
    let listed = || async {
        let v = dev_api_json(&emu, "connections").await;
        assert_eq!(v["open"], 1);
        v["connections"][0].clone()
    };
    let c = listed().await;
    assert_eq!(c["connectionId"], id.as_str());
    assert_eq!(c["user"], "alice");
    assert_eq!(c["authorizer"]["principalId"], "alice");
    assert_eq!(c["rooms"], json!(["lobby"]));
    assert!(c["connectedAt"].as_str().unwrap().ends_with('Z'), "{c}");
    // hello, join, send: counted as they arrive, before they are handled.
    assert_eq!(c["framesIn"], 3, "{c}");
    // welcome, joined, ack at least; a write is counted once it is done.
    eventually("the writes to be counted", || async {
        let c = listed().await;
        c["framesOut"].as_u64().unwrap() >= 3 && c["queued"] == 0
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn an_invocation_run_as_a_process_is_tied_to_its_posts_by_its_trace_header() {
    let emu = roomcast_processes_on_moto().await;
    let mut stream = watch(&emu).await;
    let (mut alice, alice_id) = join_with_token(&emu, &dev_token(&emu, "alice").await, "r").await;
    let (mut bob, bob_id) = join_with_token(&emu, &dev_token(&emu, "bob").await, "r").await;
    send(
        &mut alice,
        json!({"action": "send", "room": "r", "id": "m1", "data": 1}),
    )
    .await;
    recv_type(&mut alice, "ack").await;
    recv_type(&mut bob, "message").await;
    // Lambda hands each invocation a trace header; the runtime puts it in
    // `_X_AMZN_TRACE_ID` and the function's SDK sends it with each call
    // (AWS SDK recursion detection), so the message's post to Bob and the
    // ack's post to Alice carry the send's invocation's trace.
    let (trace, posts) = from_timeline(&mut stream, |seen| {
        let posts_of = |t: &Value| {
            seen.iter()
                .filter(|e| e["kind"] == "connections-api" && e["traceId"] == *t)
                .map(|e| e["connectionId"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        seen.iter()
            .filter(|e| {
                e["kind"] == "invoke"
                    && e["function"] == "MessageFunction"
                    && e["connectionId"] == alice_id.as_str()
                    && e["traceId"].is_string()
            })
            .map(|e| (e["traceId"].clone(), posts_of(&e["traceId"])))
            .find(|(_, posts)| posts.contains(&bob_id))
    })
    .await;
    assert!(posts.contains(&alice_id), "the ack too: {posts:?}");
    let sharing = timeline(&emu)
        .await
        .iter()
        .filter(|e| e["kind"] == "invoke" && e["traceId"] == trace)
        .count();
    assert_eq!(sharing, 1, "one invocation per trace");
    drop(stream);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_process_functions_log_lines_are_tied_to_its_invocation_and_instance() {
    let emu = lambdas(|c| c).await;
    let mut stream = watch(&emu).await;
    let out = invoke(
        &lambda_client(&emu).await,
        "CustomFunction",
        &json!({"fixture": "echo"}),
    )
    .await;
    assert_eq!(out.status_code(), 200);
    // The fixture prints its init line, then "handling echo" while serving.
    let (invoke, init, handling) = from_timeline(&mut stream, |seen| {
        let invoke = seen
            .iter()
            .find(|e| e["kind"] == "invoke" && e["function"] == "CustomFunction")?;
        let log = |text: &str| {
            seen.iter()
                .find(|e| e["kind"] == "log" && e["line"].as_str().unwrap_or("").contains(text))
                .cloned()
        };
        Some((
            invoke.clone(),
            log("init: mode serve")?,
            log("handling echo")?,
        ))
    })
    .await;
    let pid = invoke["pid"].as_u64().expect("the serving process");
    assert!(invoke["lambdaRequestId"].is_string(), "{invoke}");
    assert_eq!(handling["lambdaRequestId"], invoke["lambdaRequestId"]);
    assert_eq!(handling["pid"], pid);
    assert_eq!(handling["function"], "CustomFunction");
    assert_eq!(init["lambdaRequestId"], Value::Null, "init serves nobody");
    assert_eq!(init["pid"], pid);
    drop(stream);
    emu.shutdown().await;
}
