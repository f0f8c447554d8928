//! Roomcast's own handlers behind the emulator, from the real template.yaml,
//! over real sockets: chat, presence, typing, a forced disconnect and a
//! resume with exactly the missed messages, direct and ephemeral messages,
//! history and a leave, on the memory store and on DynamoDB (moto), and
//! with every function as its real binary, its role checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::emulator::*;
use roomcast_emulator::RunningEmulator;
use serde_json::{Value, json};

async fn roomcast(
    tune: impl FnOnce(roomcast_emulator::EmulatorConfig) -> roomcast_emulator::EmulatorConfig,
) -> RunningEmulator {
    start(tune(config("template.yaml"))).await
}

async fn join_as(emu: &RunningEmulator, user: &str) -> (Ws, String) {
    let token = dev_token(emu, user).await;
    let mut ws = connect(&format!("{}?token={token}", emu.urls.websocket)).await;
    send(&mut ws, json!({"action": "hello", "ref": "h"})).await;
    let welcome = recv_type(&mut ws, "welcome").await;
    assert_eq!(welcome["user"]["user"], user);
    (ws, welcome["connectionId"].as_str().unwrap().to_owned())
}

/// The config on moto, with a fresh table of its own.
fn on_moto(c: roomcast_emulator::EmulatorConfig) -> roomcast_emulator::EmulatorConfig {
    let table = format!("roomcast-e2e-{}", uuid::Uuid::new_v4().simple());
    c.dynamodb(common::dynamodb_endpoint(), table, true)
}

/// Every function as its real Lambda binary behind the Runtime API, state
/// in DynamoDB (moto). The binaries are built before the tests run, and
/// checked to be newer than their sources: never stale.
fn as_processes(c: roomcast_emulator::EmulatorConfig) -> roomcast_emulator::EmulatorConfig {
    assert_lambda_binaries_fresh();
    on_moto(c).functions(roomcast_emulator::FunctionsMode::Process)
}

async fn processes() -> RunningEmulator {
    roomcast(as_processes).await
}

/// One test in both function modes: in process (memory store), and every
/// function as its real binary (moto).
macro_rules! both_modes {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn in_process() {
                super::$body(super::roomcast(|c| c).await).await;
            }

            #[tokio::test]
            async fn as_processes() {
                let emu = super::processes().await;
                let _iam = crate::common::emulator::no_access_denied(&emu);
                super::$body(emu).await;
            }
        }
    };
}

fn seqs(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// The scenario of the emulator issue's "Done when".
async fn chat_scenario(emu: &RunningEmulator) {
    let (mut alice, _) = join_as(emu, "alice").await;
    let (mut bob, bob_id) = join_as(emu, "bob").await;

    send(
        &mut alice,
        json!({"action": "join", "room": "lobby", "ref": 1}),
    )
    .await;
    let joined = recv_type(&mut alice, "joined").await;
    assert_eq!(
        (joined["seq"].clone(), joined["ref"].clone()),
        (json!(0), json!(1))
    );
    send(&mut bob, json!({"action": "join", "room": "lobby"})).await;
    let joined = recv_type(&mut bob, "joined").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    let presence = recv_type(&mut alice, "presence").await;
    assert_eq!(
        (presence["user"].clone(), presence["event"].clone()),
        (json!("bob"), json!("joined"))
    );

    send(
        &mut alice,
        json!({"action": "typing", "room": "lobby", "active": true}),
    )
    .await;
    let typing = recv_type(&mut bob, "typing").await;
    assert_eq!(
        (typing["user"].clone(), typing["active"].clone()),
        (json!("alice"), json!(true))
    );

    send(&mut alice, json!({"action": "send", "room": "lobby", "id": "a1", "data": {"text": "hi bob"}, "ref": 2})).await;
    assert_eq!(recv_type(&mut alice, "ack").await["seq"], 1);
    let m = recv_type(&mut bob, "message").await;
    assert_eq!(
        (
            m["seq"].clone(),
            m["data"]["text"].clone(),
            m["from"]["user"].clone()
        ),
        (json!(1), json!("hi bob"), json!("alice"))
    );
    send(
        &mut bob,
        json!({"action": "send", "room": "lobby", "id": "b1", "data": {"text": "hi alice"}}),
    )
    .await;
    assert_eq!(recv_type(&mut bob, "ack").await["seq"], 2);
    assert_eq!(recv_type(&mut alice, "message").await["seq"], 2);

    // The server force-closes bob through the Management API.
    let api = management(&emu.urls.management).await;
    api.delete_connection()
        .connection_id(&bob_id)
        .send()
        .await
        .unwrap();
    assert_eq!(closed(&mut bob).await.0, 1000);
    let left = recv_type(&mut alice, "presence").await;
    assert_eq!(
        (left["user"].clone(), left["event"].clone()),
        (json!("bob"), json!("left"))
    );

    // Alice keeps talking while bob is away.
    for (i, id) in ["a2", "a3"].iter().enumerate() {
        send(
            &mut alice,
            json!({"action": "send", "room": "lobby", "id": id, "data": {"n": i}}),
        )
        .await;
        recv_type(&mut alice, "ack").await;
    }

    // Bob comes back and resumes from the last seq he saw: exactly the missed ones.
    let (mut bob, _) = join_as(emu, "bob").await;
    send(
        &mut bob,
        json!({"action": "join", "room": "lobby", "since": 2}),
    )
    .await;
    let resumed = recv_type(&mut bob, "joined").await;
    assert_eq!(seqs(&resumed["missed"]), vec![3, 4], "{resumed}");
    assert!(resumed.get("truncated").is_none());
    assert_eq!(recv_type(&mut alice, "presence").await["event"], "joined");
    // A retry of an old send is acked with its original seq, not redelivered.
    send(
        &mut bob,
        json!({"action": "send", "room": "lobby", "id": "b1", "data": {"text": "hi alice"}}),
    )
    .await;
    let ack = recv_type(&mut bob, "ack").await;
    assert_eq!(
        (ack["seq"].clone(), ack["duplicate"].clone()),
        (json!(2), json!(true))
    );
    send(
        &mut bob,
        json!({"action": "send", "room": "lobby", "id": "b2", "data": "back"}),
    )
    .await;
    assert_eq!(recv_type(&mut bob, "ack").await["seq"], 5);
    assert_eq!(
        recv_type(&mut alice, "message").await["seq"],
        5,
        "no duplicate of seq 2 came first"
    );

    // A direct message reaches every connection of its user, unstored.
    send(
        &mut alice,
        json!({"action": "direct", "to": "bob", "id": "d1", "data": {"text": "psst"}}),
    )
    .await;
    assert_eq!(recv_type(&mut alice, "ack").await["delivered"], 1);
    let direct = recv_type(&mut bob, "direct").await;
    assert_eq!(
        (
            direct["from"]["user"].clone(),
            direct["data"]["text"].clone()
        ),
        (json!("alice"), json!("psst"))
    );
    // Ephemeral data: fanned out, no seq.
    send(
        &mut alice,
        json!({"action": "send", "room": "lobby", "id": "e1", "data": {"x": 1}, "ephemeral": true}),
    )
    .await;
    let e = recv_type(&mut bob, "ephemeral").await;
    assert!(e.get("seq").is_none(), "{e}");
    // History, newest first.
    send(
        &mut bob,
        json!({"action": "history", "room": "lobby", "limit": 2, "ref": "h"}),
    )
    .await;
    let history = recv_type(&mut bob, "history").await;
    assert_eq!(seqs(&history["messages"]), vec![5, 4]);
    assert_eq!(history["more"], true);
    // Bob leaves: the room says so to alice.
    send(
        &mut bob,
        json!({"action": "leave", "room": "lobby", "ref": "l"}),
    )
    .await;
    assert_eq!(recv_type(&mut bob, "left").await["room"], "lobby");
    let gone = recv_type(&mut alice, "presence").await;
    assert_eq!(
        (gone["user"].clone(), gone["event"].clone()),
        (json!("bob"), json!("left"))
    );
}

#[tokio::test]
async fn two_clients_chat_then_one_is_force_disconnected_and_resumes_exactly() {
    let emu = roomcast(|c| c).await;
    chat_scenario(&emu).await;
}

#[tokio::test]
async fn the_same_scenario_runs_on_dynamodb() {
    let emu = roomcast(on_moto).await;
    chat_scenario(&emu).await;
}

/// Every function as its real Lambda binary behind the Runtime API, with
/// state in DynamoDB (moto): the mains, their settings from the environment
/// and `lambda_runtime` run offline exactly as they will in AWS. The
/// binaries are checked to be newer than their sources first.
#[tokio::test]
async fn the_same_scenario_runs_with_every_function_as_its_real_binary() {
    let emu = processes().await;
    let _iam = no_access_denied(&emu);
    chat_scenario(&emu).await;
}

#[tokio::test]
async fn process_functions_without_a_shared_store_are_refused_at_start_up() {
    let err = roomcast_emulator::Emulator::bind(
        config("template.yaml").functions(roomcast_emulator::FunctionsMode::Process),
    )
    .await
    .expect_err("start-up fails");
    assert!(
        matches!(
            err,
            roomcast_emulator::EmulatorError::ProcessNeedsStore { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--dynamodb-endpoint"), "{err}");
}

/// template.yaml is SAM's `AWS::Serverless::WebSocketApi`; the same API
/// spelled as raw `AWS::ApiGatewayV2` resources behaves the same.
#[tokio::test]
async fn the_same_scenario_runs_from_the_raw_apigatewayv2_form() {
    let emu = start(config("tests/fixtures/raw-apigatewayv2-template.yaml")).await;
    chat_scenario(&emu).await;
}

#[tokio::test]
async fn the_same_scenario_runs_with_the_in_process_gateway() {
    let emu = roomcast(|c| c.in_process_gateway(true)).await;
    chat_scenario(&emu).await;
}

both_modes!(
    tokens_are_checked_at_the_door,
    tokens_are_checked_at_the_door_on
);
async fn tokens_are_checked_at_the_door_on(emu: RunningEmulator) {
    let ws = &emu.urls.websocket;
    assert_eq!(
        try_connect(ws, None).await.err(),
        Some(401),
        "no token: 401 before any handler"
    );
    assert_eq!(
        try_connect(&format!("{ws}?token=garbage"), None)
            .await
            .err(),
        Some(403)
    );
    let forged = roomcast_aws::auth::mint_hs256(
        &roomcast_aws::auth::DevClaims {
            sub: "mallory".into(),
            name: "m".into(),
            exp: 4_000_000_000,
            rooms: roomcast_aws::auth::RoomRights::all(),
            direct: true,
            iss: None,
            aud: None,
        },
        b"not the dev secret",
    )
    .unwrap();
    assert_eq!(
        try_connect(&format!("{ws}?token={forged}"), None)
            .await
            .err(),
        Some(403)
    );
    let expired = roomcast_aws::auth::mint_hs256(
        &roomcast_aws::auth::DevClaims {
            sub: "old".into(),
            name: "o".into(),
            exp: 1_000_000_000,
            rooms: roomcast_aws::auth::RoomRights::all(),
            direct: true,
            iss: None,
            aud: None,
        },
        installation_secret().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        try_connect(&format!("{ws}?token={expired}"), None)
            .await
            .err(),
        Some(403)
    );
}

#[tokio::test]
async fn browsers_offering_the_roomcast_subprotocol_get_it_back() {
    let emu = roomcast(|c| c).await;
    let token = dev_token(&emu, "alice").await;
    let url = format!("{}?token={token}", emu.urls.websocket);
    let (_ws, headers) = try_connect(&url, Some(&format!("roomcast, {token}")))
        .await
        .expect("upgrade");
    assert_eq!(headers.get("sec-websocket-protocol").unwrap(), "roomcast");
}

both_modes!(
    bad_frames_get_error_frames_with_the_ref_over_the_wire,
    bad_frames_get_error_frames_with_the_ref_over_the_wire_on
);
async fn bad_frames_get_error_frames_with_the_ref_over_the_wire_on(emu: RunningEmulator) {
    let (mut ws, _) = join_as(&emu, "alice").await;
    for (frame, code) in [
        (
            json!({"action": "fly", "ref": 1}).to_string(),
            "unknown_action",
        ),
        ("{broken".to_owned(), "invalid_json"),
        (
            json!({"action": "join", "room": "no/slash", "ref": 1}).to_string(),
            "invalid_room",
        ),
    ] {
        futures::SinkExt::send(
            &mut ws,
            tokio_tungstenite::tungstenite::Message::text(frame),
        )
        .await
        .unwrap();
        let e = recv_type(&mut ws, "error").await;
        assert_eq!(e["code"], code);
        if code != "invalid_json" {
            assert_eq!(e["ref"], 1);
        }
    }
    // Over 32 KiB of data fits API Gateway's 128 KB message only when
    // fragmented; then the handler's own limit answers.
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let body =
        json!({"action": "send", "room": "r", "id": "x", "data": "y".repeat(33_000), "ref": 7})
            .to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    for (chunk, opcode, fin) in [
        (first, OpCode::Data(Data::Text), false),
        (rest, OpCode::Data(Data::Continue), true),
    ] {
        let frame = Frame::message(chunk.to_vec(), opcode, fin);
        futures::SinkExt::send(
            &mut ws,
            tokio_tungstenite::tungstenite::Message::Frame(frame),
        )
        .await
        .unwrap();
    }
    let e = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].clone(), e["ref"].clone()),
        (json!("payload_too_large"), json!(7))
    );
}

both_modes!(
    floods_are_rate_limited_then_cut_off,
    floods_are_rate_limited_then_cut_off_on
);
async fn floods_are_rate_limited_then_cut_off_on(emu: RunningEmulator) {
    let (mut ws, _) = join_as(&emu, "flooder").await;
    for i in 0..200 {
        send(&mut ws, json!({"action": "heartbeat", "ref": i})).await;
    }
    let mut limited = 0;
    let code = loop {
        match next(&mut ws).await {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["code"] == "rate_limited" {
                    limited += 1;
                }
            }
            tokio_tungstenite::tungstenite::Message::Close(f) => {
                break f.map(|f| u16::from(f.code));
            }
            _ => {}
        }
    };
    assert!(limited > 50, "rate_limited errors: {limited}");
    assert_eq!(
        code,
        Some(1000),
        "closed by the server after sustained abuse"
    );
}

#[tokio::test]
async fn dev_tokens_health_and_metrics() {
    let emu = roomcast(|c| c).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", emu.addr);
    let r = http.get(format!("{base}/dev/token")).send().await.unwrap();
    assert_eq!(r.status(), 400, "user is required");
    let health: Value = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let (mut ws, _) = join_as(&emu, "alice").await;
    send(&mut ws, json!({"action": "heartbeat"})).await;
    recv_type(&mut ws, "pong").await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "roomcast_connections_open 1",
        "roomcast_connects_total{status=\"101\"} 1",
        "roomcast_frames_in_total",
        "roomcast_handler_duration_seconds_bucket{route=\"$default\"",
        "roomcast_connections_api_calls_total",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
    // Without --dev there is no dev secret: Roomcast's functions refuse to
    // start until one is configured, and say which settings would do.
    let err = roomcast_emulator::Emulator::bind(config("template.yaml").dev(false))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("ROOMCAST_JWT_SECRET"), "{err}");
    let (no_dev, _) = probe(|c| c.dev(false)).await;
    let r = http
        .get(format!("http://{}/dev/token?user=a", no_dev.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no dev tokens without --dev");
}

#[tokio::test]
async fn an_unknown_binary_is_a_start_up_error_naming_the_function() {
    let dir = std::env::temp_dir().join(format!("roomcast-tpl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo_path("template.yaml"))
        .unwrap()
        .replace("Binary: message", "Binary: mystery");
    std::fs::write(dir.join("template.yaml"), text).unwrap();
    let err = roomcast_emulator::Emulator::bind(
        config("template.yaml").template(dir.join("template.yaml")),
    )
    .await
    .expect_err("start-up fails");
    let msg = err.to_string();
    assert!(
        msg.contains("MessageFunction") && msg.contains("mystery"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn idle_timeout_flag_reaches_presence_and_closes_idle_sockets() {
    let emu = roomcast(|c| c.idle_timeout(Duration::from_secs(1))).await;
    let (mut ws, _) = join_as(&emu, "sleepy").await;
    assert_eq!(closed(&mut ws).await.0, 1001);
}

/// A room above the inline threshold, through the real fanout function:
/// the message function hands shards to it through the Lambda Invoke API
/// (`Event`), and every member gets each message exactly once, while
/// several senders send at once.
async fn large_rooms_are_delivered_by_shards_on(emu: RunningEmulator) {
    const MEMBERS: usize = 24;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let (mut ws, _) = join_as(&emu, &format!("user{i:02}")).await;
        send(&mut ws, json!({"action": "join", "room": "big"})).await;
        recv_type(&mut ws, "joined").await;
        members.push(ws);
    }
    // Three senders at once, three messages each.
    let senders: Vec<_> = members.drain(..3).collect();
    let sends = senders
        .into_iter()
        .enumerate()
        .map(|(s, mut ws)| async move {
            for k in 0..3 {
                let id = format!("s{s}-{k}");
                send(
                    &mut ws,
                    json!({"action": "send", "room": "big", "id": id, "data": k}),
                )
                .await;
            }
            let mut acked = Vec::new();
            let mut got = Vec::new();
            while acked.len() < 3 || got.len() < 6 {
                let f = recv(&mut ws).await;
                match f["type"].as_str() {
                    Some("ack") => acked.push(f["seq"].as_u64().unwrap()),
                    Some("message") => got.push(f["seq"].as_u64().unwrap()),
                    _ => {}
                }
            }
            (ws, acked, got)
        });
    let done = futures::future::join_all(sends).await;
    let mut acked: Vec<u64> = done.iter().flat_map(|(_, a, _)| a.clone()).collect();
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=9).collect::<Vec<u64>>(),
        "nine messages, gap-free seqs"
    );
    for (_, _, got) in &done {
        let mut got = got.clone();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 6, "each sender gets the other senders' messages");
    }
    let reads = members.iter_mut().map(|ws| async move {
        let mut seqs = Vec::new();
        while seqs.len() < 9 {
            let f = recv_type(ws, "message").await;
            seqs.push(f["seq"].as_u64().unwrap());
        }
        silent(ws, 300).await;
        seqs.sort_unstable();
        seqs
    });
    for seqs in futures::future::join_all(reads).await {
        assert_eq!(
            seqs,
            (1..=9).collect::<Vec<u64>>(),
            "every seq exactly once"
        );
    }
    // Delivered by shards, not by the message function's inline fallback:
    // each message took at least one asynchronous fanout invocation.
    let metrics = metrics(&emu).await;
    let shards: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"roomcast_handler_duration_seconds_count{route="invoke-async"} "#)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(shards >= 9, "{shards} shard invocations for 9 messages");
}

/// The thresholds low enough that 24 members take several shards.
async fn sharded(
    tune: impl FnOnce(roomcast_emulator::EmulatorConfig) -> roomcast_emulator::EmulatorConfig,
) -> RunningEmulator {
    roomcast(|c| {
        tune(c)
            .parameter("FanoutInlineMax", "3")
            .parameter("FanoutShardSize", "4")
    })
    .await
}

#[tokio::test]
async fn large_rooms_are_delivered_by_shards_in_process() {
    large_rooms_are_delivered_by_shards_on(sharded(|c| c).await).await;
}

#[tokio::test]
async fn large_rooms_are_delivered_by_shards_as_processes_on_dynamodb() {
    let emu = sharded(as_processes).await;
    let _iam = no_access_denied(&emu);
    large_rooms_are_delivered_by_shards_on(emu).await;
}

/// The raw `AWS::ApiGatewayV2` form declares the fanout function too, so
/// a large room there is sharded, not delivered by the inline fallback.
#[tokio::test]
async fn large_rooms_are_delivered_by_shards_from_the_raw_apigatewayv2_form() {
    let emu = start(
        config("tests/fixtures/raw-apigatewayv2-template.yaml")
            .parameter("FanoutInlineMax", "3")
            .parameter("FanoutShardSize", "4"),
    )
    .await;
    large_rooms_are_delivered_by_shards_on(emu).await;
}

/// Every frame posted to this socket before now: a heartbeat is sent and
/// frames are read up to its pong. Posts and route responses share the
/// socket's one outbound queue, so whatever was posted before the
/// heartbeat arrives before its pong, however slow the machine is (a wait
/// for a quiet spell would miss a late frame under load).
async fn frames_before_a_pong(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"action": "heartbeat", "ref": "fence"})).await;
    let mut frames = Vec::new();
    loop {
        let v = recv(ws).await;
        if v["type"] == "pong" && v["ref"] == "fence" {
            return frames;
        }
        frames.push(v);
    }
}

/// Joins racing past the presence cap (3): the watchers already there are
/// told once that their rosters are partial, and about none of the racers.
async fn the_room_outgrowing_the_presence_cap_is_told_once_on(emu: RunningEmulator) {
    let mut early = Vec::new();
    for i in 0..3 {
        let (mut ws, _) = join_as(&emu, &format!("early{i}")).await;
        send(&mut ws, json!({"action": "join", "room": "crowd"})).await;
        recv_type(&mut ws, "joined").await;
        early.push(ws);
    }
    let racers = futures::future::join_all((0..5).map(|i| {
        let emu = &emu;
        async move {
            let (mut ws, _) = join_as(emu, &format!("racer{i}")).await;
            send(&mut ws, json!({"action": "join", "room": "crowd"})).await;
            let joined = recv_type(&mut ws, "joined").await;
            assert_eq!(joined["rosterTruncated"], true, "{joined}");
            ws
        }
    }))
    .await;
    // Each racer's notice (if its join crossed the cap) was posted before
    // its `joined` came back, so all of them were posted by now.
    for (i, ws) in early.iter_mut().enumerate() {
        let frames = frames_before_a_pong(ws).await;
        let notices: Vec<&Value> = frames.iter().filter(|f| f["type"] == "roster").collect();
        assert_eq!(notices.len(), 1, "early{i}: {frames:?}");
        assert_eq!(notices[0]["memberCount"], 4);
        assert_eq!(notices[0]["truncated"], true);
        assert!(
            !frames.iter().any(
                |f| f["type"] == "presence" && f["user"].as_str().unwrap().starts_with("racer")
            ),
            "early{i}: past the cap nobody is announced: {frames:?}"
        );
    }
    drop(racers);
}

#[tokio::test]
async fn the_room_outgrowing_the_presence_cap_is_told_once_in_memory() {
    let emu = roomcast(|c| c.parameter("PresenceMax", "3")).await;
    the_room_outgrowing_the_presence_cap_is_told_once_on(emu).await;
}

#[tokio::test]
async fn the_room_outgrowing_the_presence_cap_is_told_once_on_dynamodb() {
    let emu = roomcast(|c| on_moto(c).parameter("PresenceMax", "3")).await;
    the_room_outgrowing_the_presence_cap_is_told_once_on(emu).await;
}

#[tokio::test]
async fn an_unknown_parameter_override_is_refused_at_start() {
    let result = roomcast_emulator::Emulator::bind(
        config("template.yaml").parameter("FanoutInlineMaks", "3"),
    )
    .await;
    let Err(e) = result else {
        panic!("a typo in a parameter name must not start");
    };
    assert!(e.to_string().contains("FanoutInlineMaks"), "{e}");
}
