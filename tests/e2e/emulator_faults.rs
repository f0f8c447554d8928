//! Fault injection through the emulator's HTTP API (docs/faults.md), each
//! fault's documented effect asserted over real sockets with Roomcast's
//! own functions, other clients served normally meanwhile; faults expire
//! by count and by time; bad requests are clear 400s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::emulator::*;
use roomcast_emulator::RunningEmulator;
use serde_json::{Value, json};

async fn roomcast() -> RunningEmulator {
    start(config("template.yaml").integration_timeout(std::time::Duration::from_secs(1))).await
}

async fn join_as(emu: &RunningEmulator, user: &str, room: &str) -> (Ws, String) {
    join_with_token(emu, &dev_token(emu, user).await, room).await
}

async fn fault(emu: &RunningEmulator, body: Value) -> (u16, Value) {
    let r = dev_api(emu, reqwest::Method::POST, "faults")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn faults(emu: &RunningEmulator) -> Vec<Value> {
    dev_api_json(emu, "faults").await["faults"]
        .as_array()
        .unwrap()
        .clone()
}

/// Removes fault `id`; the answer's status.
async fn remove(emu: &RunningEmulator, id: &Value) -> u16 {
    let id = id.as_u64().unwrap();
    dev_api_status(emu, reqwest::Method::DELETE, &format!("faults/{id}")).await
}

async fn say(ws: &mut Ws, room: &str, id: &str) {
    send(
        ws,
        json!({"action": "send", "room": room, "id": id, "data": id}),
    )
    .await;
    recv_type(ws, "ack").await;
}

#[tokio::test]
async fn a_410_fault_drops_one_users_delivery_and_only_that() {
    let emu = roomcast().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    let (mut carol, _) = join_as(&emu, "carol", "r").await;
    let (status, added) = fault(
        &emu,
        json!({"fault": "post-status", "status": 410, "scope": {"user": "bob"}, "count": 1}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["remaining"], 1);
    say(&mut alice, "r", "m1").await;
    // Carol is served; bob's post answered 410 (Roomcast forgot him, as
    // it must for a gone connection) and the fault is used up.
    assert_eq!(recv_type(&mut carol, "message").await["id"], "m1");
    let e = &emu;
    eventually("the fault struck once and is used up", || async move {
        faults(e).await.is_empty()
    })
    .await;
    assert!(
        metrics(&emu)
            .await
            .contains("roomcast_fault_hits_total{fault=\"post-status\"} 1")
    );
    // A 410 means gone: bob's socket is cut, without a close frame. He
    // reconnects, and his resume brings the message he missed.
    ends_without_close(&mut bob).await;
    let (mut bob, _) = join_as(&emu, "bob", "elsewhere").await;
    send(&mut bob, json!({"action": "join", "room": "r", "since": 0})).await;
    let joined = recv_type(&mut bob, "joined").await;
    assert_eq!(joined["missed"][0]["id"], "m1", "{joined}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_stalled_post_is_late_but_delivered_and_others_are_not_held_up() {
    let emu = roomcast().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    let (status, _) = fault(
        &emu,
        json!({"fault": "post-stall", "ms": 300, "scope": {"user": "bob"}, "count": 1}),
    )
    .await;
    assert_eq!(status, 201);
    say(&mut alice, "r", "m1").await;
    assert_eq!(recv_type(&mut bob, "message").await["id"], "m1");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_dropped_disconnect_leaves_state_that_gone_cleanup_removes() {
    let emu = roomcast().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, bob_id) = join_as(&emu, "bob", "r").await;
    fault(
        &emu,
        json!({"fault": "drop-disconnect", "scope": {"connection": bob_id}, "count": 1}),
    )
    .await;
    bob.close(None).await.unwrap();
    // Wait for the drop to happen (the fault's hit), not for a guess.
    let hit = "roomcast_fault_hits_total{fault=\"drop-disconnect\"} 1";
    let e = &emu;
    eventually("the $disconnect was dropped", || async move {
        metrics(e).await.contains(hit)
    })
    .await;
    // Bob's state is still there (no $disconnect ran)...
    let lambda = lambda_client(&emu).await;
    assert_eq!(room_members(&lambda).await, 2);
    // ...until a post finds him gone and removes him (after the ack: the
    // fan-out runs after it, so wait for the removal itself).
    say(&mut alice, "r", "m1").await;
    let l = &lambda;
    eventually("the gone connection is removed", || async move {
        room_members(l).await == 1
    })
    .await;
    emu.shutdown().await;
}

async fn room_members(lambda: &aws_sdk_lambda::Client) -> u64 {
    let out = lambda
        .invoke()
        .function_name("PublishFunction")
        .payload(aws_sdk_lambda::primitives::Blob::new(
            json!({"op": "roomInfo", "room": "r"}).to_string(),
        ))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    v["memberCount"].as_u64().unwrap()
}

#[tokio::test]
async fn a_cut_connection_gets_no_close_frame_and_disconnects_with_1006() {
    let emu = roomcast().await;
    let (mut bob, bob_id) = join_as(&emu, "bob", "r").await;
    let cut = format!("connections/{bob_id}/cut");
    assert_eq!(dev_api_status(&emu, reqwest::Method::POST, &cut).await, 204);
    // The stream ends (or errs) without a Close frame.
    ends_without_close(&mut bob).await;
    let counted = "roomcast_disconnects_total{status=\"1006\"} 1";
    let e = &emu;
    eventually("$disconnect reports 1006", || async move {
        metrics(e).await.contains(counted)
    })
    .await;
    assert_eq!(dev_api_status(&emu, reqwest::Method::POST, &cut).await, 404);
    emu.shutdown().await;
}

/// The next frame that is not a presence announcement.
async fn reply_to(ws: &mut Ws) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] != "presence" {
            return v;
        }
    }
}

#[tokio::test]
async fn invocation_faults_error_and_time_out_then_the_function_serves_again() {
    let emu = roomcast().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    for f in ["invoke-error", "invoke-timeout", "invoke-throttle"] {
        let (status, _) = fault(
            &emu,
            json!({"fault": f, "scope": {"function": "MessageFunction", "user": "alice"}, "count": 1}),
        )
        .await;
        assert_eq!(status, 201);
        // API Gateway's answer to a failed integration, as the emulator
        // gives it for any failed invocation. For a throttled Lambda
        // API Gateway's WebSocket documentation is silent; behind a REST
        // API it is the same integration failure (docs/faults.md).
        send(&mut alice, json!({"action": "heartbeat"})).await;
        let reply = reply_to(&mut alice).await;
        assert_eq!(reply["message"], "Internal server error", "{f}: {reply}");
        // Bob is served meanwhile.
        send(&mut bob, json!({"action": "heartbeat"})).await;
        assert_eq!(reply_to(&mut bob).await["type"], "pong");
    }
    send(&mut alice, json!({"action": "heartbeat"})).await;
    assert_eq!(reply_to(&mut alice).await["type"], "pong");
    let m = metrics(&emu).await;
    assert!(
        m.contains("roomcast_fault_hits_total{fault=\"invoke-error\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("roomcast_fault_hits_total{fault=\"invoke-timeout\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("roomcast_fault_hits_total{fault=\"invoke-throttle\"} 1"),
        "{m}"
    );
    emu.shutdown().await;
}

/// Alice's send fails as `unavailable`, with its `ref`; after `heal`, her
/// retry with the same id is stored once and delivered to Bob.
async fn refused_then_stored_once(
    alice: &mut Ws,
    bob: &mut Ws,
    heal: impl std::future::Future<Output = ()>,
) {
    let frame = json!({"action": "send", "room": "r", "id": "m1", "data": 1, "ref": "s1"});
    send(alice, frame.clone()).await;
    let refused = recv_type(alice, "error").await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["ref"], "s1");
    heal.await;
    send(alice, frame).await;
    assert_eq!(recv_type(alice, "ack").await["seq"], 1);
    assert_eq!(recv_type(bob, "message").await["id"], "m1");
}

#[tokio::test]
async fn a_store_error_is_an_unavailable_frame_and_the_retry_stores_once() {
    let emu = roomcast().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    let (status, _) = fault(
        &emu,
        json!({"fault": "store-error", "error": "throttling", "count": 1}),
    )
    .await;
    assert_eq!(status, 201);
    // One call fails, then the fault is used up.
    refused_then_stored_once(&mut alice, &mut bob, async {}).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_expire_by_time_can_be_removed_and_bad_ones_are_clear_400s() {
    let emu = roomcast().await;
    let (status, timed) = fault(&emu, json!({"fault": "drop-disconnect", "durationMs": 50})).await;
    assert_eq!(status, 201);
    assert!(timed["expiresInMs"].as_u64().unwrap() <= 50);
    let e = &emu;
    eventually("the timed fault expires", || async move {
        faults(e).await.is_empty()
    })
    .await;
    let (_, kept) = fault(
        &emu,
        json!({"fault": "invoke-error", "scope": {"function": "Nope"}}),
    )
    .await;
    assert_eq!(faults(&emu).await.len(), 1);
    assert_eq!(remove(&emu, &kept["id"]).await, 204);
    assert_eq!(remove(&emu, &kept["id"]).await, 404);
    for (bad, says) in [
        (json!({"fault": "meteor"}), "meteor"),
        (
            json!({"fault": "post-status", "status": 500}),
            "410, 413 or 429",
        ),
        (
            json!({"fault": "drop-disconnect", "scope": {"planet": "mars"}}),
            "planet",
        ),
        (json!({"fault": "post-stall"}), "ms"),
        (
            json!({"fault": "invoke-crash", "afterMs": 1_000_000}),
            "afterMs",
        ),
        (json!({"fault": "invoke-throttle", "after": 1}), "after"),
    ] {
        let (status, body) = fault(&emu, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{bad}: {body}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_fast_clock_brings_the_idle_and_maximum_duration_closes_in_seconds() {
    // API Gateway closes a connection idle for 10 minutes, and any at 2
    // hours ("Amazon API Gateway quotas": WebSocket idle timeout and
    // connection duration), with 1001 Going away, as the emulator does.
    let emu = roomcast().await;
    let (mut idle, _) = join_as(&emu, "ida", "r").await;
    let (status, body) = fault(&emu, json!({"fault": "fast-clock", "factor": 600})).await;
    assert_eq!(status, 201, "{body}");
    // 10 minutes / 600 = 1 s of silence.
    assert_eq!(closed(&mut idle).await, (1001, "Going away".into()));
    // 2 hours / 7200 = 1 s. This emulator's idle timeout is 2 hours too
    // (so 1 s at that factor), and a heartbeat every 300 ms (within the
    // rate limit) keeps idleness away.
    let long =
        start(config("template.yaml").idle_timeout(std::time::Duration::from_secs(2 * 3600))).await;
    let (mut busy, _) = join_as(&long, "max", "r").await;
    fault(&long, json!({"fault": "fast-clock", "factor": 7200})).await;
    let ended = tokio::time::timeout(WAIT, async {
        let mut beat = tokio::time::interval(std::time::Duration::from_millis(300));
        loop {
            tokio::select! {
                _ = beat.tick() => send(&mut busy, json!({"action": "heartbeat"})).await,
                m = futures::StreamExt::next(&mut busy) => match m {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => {
                        return f.map(|f| (u16::from(f.code), f.reason.to_string()));
                    }
                    Some(Ok(_)) => {}
                    _ => return None,
                },
            }
        }
    })
    .await
    .expect("the maximum duration closes it");
    assert_eq!(ended, Some((1001, "Going away".into())));
    long.shutdown().await;
    // Bad factors and scopes are clear 400s.
    for bad in [
        json!({"fault": "fast-clock", "factor": 1}),
        json!({"fault": "fast-clock", "factor": 10, "count": 1}),
        json!({"fault": "fast-clock", "factor": 10, "scope": {"user": "x"}}),
    ] {
        assert_eq!(fault(&emu, bad.clone()).await.0, 400, "{bad}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_throttled_function_is_lambdas_429_and_the_sdks_retry_absorbs_one() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let invoke = || {
        lambda
            .invoke()
            .function_name("custom-echo")
            .payload(payload(&json!({"fixture": "echo"})))
            .send()
    };
    // AWS Lambda API Reference, "Invoke", Errors: TooManyRequestsException,
    // HTTP 429, with the reason. The SDK's standard retry treats it as a
    // throttle: three attempts, all refused, and the function never ran.
    let (status, added) = fault(
        &emu,
        json!({"fault": "invoke-throttle", "scope": {"function": "CustomFunction"}, "count": 10}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let e = invoke().await.unwrap_err();
    let service = e.into_service_error();
    let aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(t) = &service
    else {
        panic!("not a throttle: {service:?}");
    };
    assert_eq!(
        t.reason(),
        Some(&aws_sdk_lambda::types::ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
    );
    let listed = faults(&emu).await;
    assert_eq!(listed[0]["hits"], 3, "the SDK's three attempts: {listed:?}");
    assert_eq!(remove(&emu, &added["id"]).await, 204);
    // One throttle: the SDK's retry gets through.
    fault(
        &emu,
        json!({"fault": "invoke-throttle", "scope": {"function": "CustomFunction"}, "count": 1}),
    )
    .await;
    let out = invoke().await.unwrap();
    assert_eq!(out.status_code(), 200);
    assert!(parse(&out)["pid"].is_u64());
    assert!(faults(&emu).await.is_empty(), "used up");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_throttled_event_goes_back_to_the_queue_without_using_its_retries() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let file = std::env::temp_dir().join(format!("roomcast-throttled-{}", uuid::Uuid::new_v4()));
    // Three throttles: more than the two retries a function error gets, so
    // the event runs only if throttles are not counted as attempts (AWS,
    // "How Lambda handles errors and retries with asynchronous
    // invocation": a throttled event returns to the queue for up to 6 h).
    fault(
        &emu,
        json!({"fault": "invoke-throttle", "scope": {"function": "CustomFunction"}, "count": 3}),
    )
    .await;
    let out = invoke_event(
        &lambda,
        "CustomFunction",
        &json!({"fixture": "record", "file": file}),
    )
    .await;
    assert_eq!(out.status_code(), 202, "accepted: the queue takes it");
    eventually("the throttled event to run", || {
        let file = file.clone();
        async move { std::fs::read_to_string(&file).is_ok_and(|s| s.lines().count() == 1) }
    })
    .await;
    let m = metrics(&emu).await;
    assert!(
        m.contains("roomcast_fault_hits_total{fault=\"invoke-throttle\"} 3"),
        "{m}"
    );
    let _ = std::fs::remove_file(&file);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_process_killed_mid_invocation_is_a_runtime_exit_and_the_next_starts_cold() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let echo = || async {
        let out = invoke(&lambda, "CustomFunction", &json!({"fixture": "echo"})).await;
        parse(&out)["pid"].as_u64().unwrap()
    };
    let before = echo().await;
    fault(
        &emu,
        json!({"fault": "invoke-crash", "scope": {"function": "CustomFunction"}, "count": 1}),
    )
    .await;
    // The runtime has taken the event and sleeps in the handler when its
    // process is killed: Lambda reports the exit as the function's error.
    let out = invoke(
        &lambda,
        "CustomFunction",
        &json!({"fixture": "sleep", "secs": 1.5}),
    )
    .await;
    assert_eq!(out.function_error(), Some("Unhandled"));
    let error = parse(&out);
    assert_eq!(error["errorType"], "Runtime.ExitError", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("Runtime exited with error: signal: killed"),
        "{message}"
    );
    let after = echo().await;
    assert_ne!(after, before, "a fresh process serves the next invocation");
    // A function in the emulator's process has no process to kill: the
    // fault never strikes it.
    let roomcast = roomcast().await;
    let (mut alice, _) = join_as(&roomcast, "alice", "r").await;
    fault(
        &roomcast,
        json!({"fault": "invoke-crash", "scope": {"function": "MessageFunction"}}),
    )
    .await;
    send(&mut alice, json!({"action": "heartbeat"})).await;
    assert_eq!(reply_to(&mut alice).await["type"], "pong");
    assert_eq!(faults(&roomcast).await[0]["hits"], 0);
    roomcast.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_store_error_reaches_functions_run_as_processes_through_their_own_sdk() {
    let emu = roomcast_processes_on_moto().await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    let mut stream = watch(&emu).await;
    // More failures than the function's SDK retries: its first call fails
    // for good, answered as DynamoDB answers a throttle.
    let (status, added) = fault(
        &emu,
        json!({"fault": "store-error", "error": "throttling", "count": 1000}),
    )
    .await;
    assert_eq!(status, 201);
    let heal = async {
        let hits = faults(&emu).await[0]["hits"].as_u64().unwrap();
        assert!(
            hits >= 3,
            "the SDK retried the throttle: {hits} calls refused"
        );
        let operation = from_timeline(&mut stream, |seen| {
            seen.iter()
                .find(|e| e["kind"] == "store")
                .map(|e| e["operation"].clone())
        })
        .await;
        assert!(operation.is_string(), "{operation}");
        assert_eq!(remove(&emu, &added["id"]).await, 204);
    };
    refused_then_stored_once(&mut alice, &mut bob, heal).await;
    drop(stream);
    emu.shutdown().await;
}

/// Every fault that strikes a post (docs/faults.md: `post-status` 429, 413
/// and 410, `post-stall`) fires the same under both gateways: handlers
/// posting through the AWS SDK and `@connections` (the default), and
/// handlers posting in the emulator's process (`--gateway in-process`).
/// Both go through the one PostToConnection, so each struck post is also
/// counted with the status API Gateway would answer (API Gateway
/// Developer Guide, "Use @connections commands in your backend service":
/// 410 GoneException; 413 PayloadTooLargeException; 429
/// LimitExceededException).
async fn post_faults_fire(in_process: bool) {
    let emu = start(
        config("template.yaml")
            .integration_timeout(std::time::Duration::from_secs(1))
            .in_process_gateway(in_process),
    )
    .await;
    let (mut alice, _) = join_as(&emu, "alice", "r").await;
    let (mut bob, _) = join_as(&emu, "bob", "r").await;
    let calls = |result: &str| {
        format!("roomcast_connections_api_calls_total{{method=\"POST\",result=\"{result}\"}} 1")
    };
    for (status, result, id) in [(429, "throttled", "m1"), (413, "too_large", "m2")] {
        let (added, _) = fault(
            &emu,
            json!({"fault": "post-status", "status": status, "scope": {"user": "bob"}, "count": 1}),
        )
        .await;
        assert_eq!(added, 201);
        say(&mut alice, "r", id).await;
        let (e, want) = (&emu, calls(result));
        eventually(&format!("bob's post answered {status}"), || {
            let want = want.clone();
            async move { metrics(e).await.contains(&want) }
        })
        .await;
    }
    let (added, _) = fault(
        &emu,
        json!({"fault": "post-stall", "ms": 200, "scope": {"user": "bob"}, "count": 1}),
    )
    .await;
    assert_eq!(added, 201);
    say(&mut alice, "r", "m3").await;
    // The struck posts were not delivered: the stalled one is bob's next.
    assert_eq!(recv_type(&mut bob, "message").await["id"], "m3");
    let (added, _) = fault(
        &emu,
        json!({"fault": "post-status", "status": 410, "scope": {"user": "bob"}, "count": 1}),
    )
    .await;
    assert_eq!(added, 201);
    say(&mut alice, "r", "m4").await;
    ends_without_close(&mut bob).await;
    let text = metrics(&emu).await;
    assert!(text.contains(&calls("gone")), "{text}");
    assert!(
        text.contains("roomcast_fault_hits_total{fault=\"post-status\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("roomcast_fault_hits_total{fault=\"post-stall\"} 1"),
        "{text}"
    );
    assert!(faults(&emu).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn post_faults_fire_through_the_sdk_and_connections() {
    post_faults_fire(false).await;
}

#[tokio::test]
async fn post_faults_fire_through_the_in_process_gateway() {
    post_faults_fire(true).await;
}
