//! Roomcast's events through EventBridge, offline: the emulator serves
//! `PutEvents` and `TestEventPattern` to the real aws-sdk-eventbridge
//! client, Roomcast's functions send their events there, the template's
//! rules route them to a Python function (which posts each to a local HTTP
//! server standing in for the team's backend), and `roomcast events
//! --forward` posts them as webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use common::emulator::*;
use common::sink::Sink;
use roomcast_emulator::{EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

/// The events fixture, its rule targets posting to `sink`.
fn events_config(sink: &Sink) -> EmulatorConfig {
    config("tests/fixtures/events/template.yaml")
        .python(python())
        .parameter("SinkUrl", format!("{}/target", sink.url))
        .async_retry_base(std::time::Duration::from_millis(20))
}

async fn eventbridge(emu: &RunningEmulator) -> aws_sdk_eventbridge::Client {
    let sdk = common::sdk().await;
    let conf = aws_sdk_eventbridge::config::Builder::from(&sdk)
        .endpoint_url(format!("http://{}", emu.addr))
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}

async fn join_as(emu: &RunningEmulator, token: &str, room: &str) -> (Ws, String) {
    join_with_token(emu, token, room).await
}

fn entry(detail: &str) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .source("tests")
        .detail_type("Probe")
        .detail(detail)
        .event_bus_name("roomcast-test")
        .build()
}

#[tokio::test]
async fn put_events_and_test_event_pattern_answer_as_eventbridge_does() {
    let sink = Sink::start().await;
    let emu = start(events_config(&sink)).await;
    let eb = eventbridge(&emu).await;
    // PutEvents: "Entries … Maximum number of 10 items": more is refused
    // whole, with a ValidationException.
    let eleven = eb
        .put_events()
        .set_entries(Some(vec![entry("{}"); 11]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(eleven.code(), Some("ValidationException"), "{eleven:?}");
    // Per entry: a failed entry is reported in its slot, the rest pass.
    let out = eb
        .put_events()
        .entries(entry(r#"{"ok":1}"#))
        .entries(entry("[not an object]"))
        .entries(
            PutEventsRequestEntry::builder()
                .detail_type("Probe")
                .detail("{}")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("tests")
                .detail_type("Probe")
                .detail("{}")
                .event_bus_name("nope")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 3);
    let codes: Vec<Option<&str>> = out.entries().iter().map(|e| e.error_code()).collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some("MalformedDetail"),
            Some("InvalidArgument"),
            Some("ResourceNotFoundException")
        ]
    );
    assert!(out.entries()[0].event_id().is_some_and(|id| id.len() == 36));
    // TestEventPattern ("TestEventPattern" API reference).
    let event = json!({
        "id": "1", "account": "000000000000", "source": "roomcast", "time": "2026-12-06T00:00:00Z",
        "region": "us-east-1", "resources": [], "detail-type": "Message Stored",
        "detail": {"room": "lobby", "seq": 3}
    })
    .to_string();
    let test = |pattern: Value| {
        eb.test_event_pattern()
            .event_pattern(pattern.to_string())
            .event(event.clone())
            .send()
    };
    let yes = test(json!({"detail": {"seq": [{"numeric": [">", 2]}]}}))
        .await
        .unwrap();
    assert!(yes.result());
    let no = test(json!({"detail": {"room": [{"prefix": "dm-"}]}}))
        .await
        .unwrap();
    assert!(!no.result());
    let bad = test(json!({"detail": {"room": [{"contains": "x"}]}}))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidEventPatternException"), "{bad:?}");
    emu.shutdown().await;
}

/// A client's message reaches the rule's Python target with EventBridge's
/// envelope ("Amazon EventBridge events") and Roomcast's documented detail;
/// a closed connection reaches it through SAM's EventBridgeRule event.
async fn events_reach_rule_targets_on(tune: fn(EmulatorConfig) -> EmulatorConfig) {
    let mut sink = Sink::start().await;
    let emu = start(tune(events_config(&sink))).await;
    let _iam = no_access_denied(&emu);
    let token = dev_token(&emu, "alice").await;
    let (mut ws, connection_id) = join_as(&emu, &token, "lobby").await;
    send(
        &mut ws,
        json!({"action": "send", "room": "lobby", "id": "m1", "data": {"text": "hi"}, "ref": "s"}),
    )
    .await;
    let ack = recv_type(&mut ws, "ack").await;
    assert_eq!(ack["seq"], 1);
    let (path, post) = sink
        .next_where("a Message Stored event", |_, p| {
            p["event"]["detail-type"] == "Message Stored"
        })
        .await;
    assert_eq!(path, "/target");
    assert_eq!(post["function"], "SinkFunction");
    let event = &post["event"];
    assert_eq!(event["version"], "0");
    assert_eq!(event["source"], "roomcast");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["id"].as_str().unwrap().len(), 36, "{event}");
    let time = event["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    let detail = &event["detail"];
    assert_eq!(detail["version"], 1);
    assert_eq!(detail["room"], "lobby");
    assert_eq!(detail["seq"], 1);
    assert_eq!(detail["id"], "m1");
    assert_eq!(detail["from"]["user"], "alice");
    assert_eq!(detail["origin"], "client");
    assert_eq!(detail["connectionId"], connection_id.as_str());
    assert_eq!(detail["data"], json!({"text": "hi"}));
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let (_, closed) = sink
        .next_where("a Connection Closed event", |_, p| {
            p["event"]["detail-type"] == "Connection Closed"
        })
        .await;
    let detail = &closed["event"]["detail"];
    assert_eq!(detail["connectionId"], connection_id.as_str());
    assert_eq!(detail["user"], "alice");
    assert_eq!(detail["rooms"], json!(["lobby"]));
    // API Gateway's disconnectStatusCode and disconnectReason.
    assert_eq!(detail["closeCode"], 1000, "{detail}");
    assert_eq!(detail["reason"], "bye", "{detail}");
    emu.shutdown().await;
}

#[tokio::test]
async fn events_reach_rule_targets_in_process() {
    events_reach_rule_targets_on(|c| c).await;
}

#[tokio::test]
async fn events_reach_rule_targets_with_every_function_a_process_on_dynamodb() {
    events_reach_rule_targets_on(|c| {
        assert_lambda_binaries_fresh();
        let table = format!("roomcast-e2e-{}", uuid::Uuid::new_v4().simple());
        c.dynamodb(common::dynamodb_endpoint(), table, true)
            .functions(roomcast_emulator::FunctionsMode::Process)
    })
    .await;
}

#[tokio::test]
async fn a_failing_rule_target_is_retried_twice_by_lambda_then_dropped() {
    // EventBridge invokes Lambda asynchronously; Lambda retries a failed
    // asynchronous invocation twice ("Error handling and automatic retries
    // in Lambda"). The failing target posts each attempt before it fails.
    let mut sink = Sink::start().await;
    let emu = start(events_config(&sink)).await;
    let claims = roomcast_aws::auth::DevClaims {
        sub: "eve".into(),
        name: "Eve".into(),
        exp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
        rooms: roomcast_aws::auth::RoomRights::new(
            [("public.*".to_owned(), vec![roomcast_aws::auth::Right::Join])].into(),
        ),
        direct: false,
        iss: None,
        aud: None,
    };
    let secret = installation_secret();
    let token = roomcast_aws::auth::mint_hs256(&claims, secret.as_bytes()).unwrap();
    let (mut ws, connection_id) = join_as(&emu, &token, "public.lobby").await;
    send(
        &mut ws,
        json!({"action": "join", "room": "private.x", "ref": "j"}),
    )
    .await;
    let refused = recv_type(&mut ws, "error").await;
    assert_eq!(refused["code"], "forbidden");
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let (_, post) = sink
            .next_where("an attempt of the failing target", |_, p| {
                p["function"] == "FailingFunction"
            })
            .await;
        attempts.push(post);
    }
    let ids: Vec<&Value> = attempts.iter().map(|p| &p["event"]["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same event: {ids:?}"
    );
    let detail = &attempts[0]["event"]["detail"];
    assert_eq!(detail["code"], "forbidden");
    assert_eq!(detail["action"], "join");
    assert_eq!(detail["connectionId"], connection_id.as_str());
    assert_eq!(detail["user"], "eve");
    // After the last retry the invocation is dropped (and counted); no
    // fourth attempt was made before that.
    let dropped = "roomcast_errors_total{kind=\"async_invocation_dropped\"} 1";
    let e = &emu;
    eventually("the invocation is dropped", || async move {
        metrics(e).await.contains(dropped)
    })
    .await;
    let more: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|(_, p)| p["function"] == "FailingFunction")
        .collect();
    assert!(more.is_empty(), "a fourth attempt: {more:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_rule_target_that_times_out_is_retried_twice_then_dropped() {
    // As a failing target: a timeout is an invocation error, and Lambda
    // retries an asynchronous invocation twice ("Error handling and
    // automatic retries in Lambda").
    let mut sink = Sink::start().await;
    let emu = start(events_config(&sink)).await;
    let token = dev_token(&emu, "dan").await;
    let (mut ws, _) = join_as(&emu, &token, "lobby").await;
    send(&mut ws, json!({"action": "leave", "room": "lobby"})).await;
    recv_type(&mut ws, "left").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, post) = sink
            .next_where("an attempt of the slow target", |_, p| {
                p["function"] == "SlowFunction"
            })
            .await;
        ids.push(post["event"]["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let dropped = "roomcast_errors_total{kind=\"async_invocation_dropped\"} 1";
    let e = &emu;
    eventually("the invocation is dropped", || async move {
        metrics(e).await.contains(dropped)
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn roomcast_events_prints_and_forwards_the_events_its_filter_matches() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut sink = Sink::start().await;
    let emu = start(events_config(&sink)).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["events", "--url", &format!("http://{}", emu.addr)])
        .args(["--filter", r#"{"detail-type": ["Message Stored"]}"#])
        .args(["--forward", &format!("{}/hook", sink.url)])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("roomcast (cargo build --workspace --bins --tests)");
    // It says when it is reading: from then on, no event is missed.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut ready_tx = Some(ready_tx);
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("reading events")
                && let Some(tx) = ready_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("roomcast events starts reading")
        .unwrap();
    let token = dev_token(&emu, "bob").await;
    let (mut ws, _) = join_as(&emu, &token, "lobby").await;
    send(
        &mut ws,
        json!({"action": "send", "room": "lobby", "id": "w1", "data": 7}),
    )
    .await;
    recv_type(&mut ws, "ack").await;
    // The first webhook is the message: the join before it did not match.
    let (_, hook) = sink
        .next_where("a webhook", |path, _| path == "/hook")
        .await;
    assert_eq!(hook["detail-type"], "Message Stored");
    assert_eq!(hook["detail"]["data"], 7);
    // And the same event on stdout, one JSON object per line.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let line = tokio::task::spawn_blocking(move || stdout.lines().next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let printed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(printed["id"], hook["id"]);
    let _ = child.kill();
    let _ = child.wait();
    emu.shutdown().await;
}

#[tokio::test]
async fn boto3_puts_events_that_reach_the_rules_and_tests_patterns() {
    // boto3, as a team's Python backend or script would use it, with only
    // `endpoint_url` pointing at the emulator.
    let mut sink = Sink::start().await;
    let emu = start(events_config(&sink)).await;
    let script = r#"
import json, sys, boto3
eb = boto3.client("events", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="local", aws_secret_access_key="local")
out = eb.put_events(Entries=[{"Source": "roomcast", "DetailType": "Message Stored",
    "Detail": json.dumps({"room": "from-boto3", "seq": 9}), "EventBusName": "roomcast-test"}])
assert out["FailedEntryCount"] == 0, out
event = {"id": "1", "account": "000000000000", "source": "roomcast", "time": "2026-12-06T00:00:00Z",
         "region": "us-east-1", "resources": [], "detail-type": "Message Stored", "detail": {"seq": 9}}
hit = eb.test_event_pattern(EventPattern=json.dumps({"detail": {"seq": [{"numeric": [">=", 9]}]}}), Event=json.dumps(event))
miss = eb.test_event_pattern(EventPattern=json.dumps({"detail": {"seq": [8]}}), Event=json.dumps(event))
try:
    eb.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}] * 11)
    refused = None
except eb.exceptions.ClientError as e:
    refused = e.response["Error"]["Code"]
print(json.dumps({"id": out["Entries"][0]["EventId"], "hit": hit["Result"], "miss": miss["Result"], "refused": refused}))
"#;
    let out = tokio::process::Command::new(python())
        .args(["-c", script, &format!("http://{}", emu.addr)])
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["hit"], true);
    assert_eq!(said["miss"], false);
    assert_eq!(said["refused"], "ValidationException");
    let (_, post) = sink
        .next_where("boto3's event at the rule target", |_, p| {
            p["event"]["detail"]["room"] == "from-boto3"
        })
        .await;
    assert_eq!(post["event"]["id"], said["id"]);
    emu.shutdown().await;
}
