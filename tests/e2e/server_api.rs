//! The server API through the real aws-sdk-lambda client (and the typed
//! roomcast-server-api client on it) against the emulator's Invoke API, in
//! both function modes: room info, members, history, publish (old requests
//! unchanged), a kick the Rust client obeys, a revoke that refuses the
//! user's next connect, and typed errors for bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use aws_sdk_lambda::primitives::Blob;
use common::emulator::*;
use roomcast_client::{Client, ClientConfig, ClientError, Event, State};
use roomcast_emulator::{EmulatorConfig, FunctionsMode, RunningEmulator};
use roomcast_server_api::{ServerApi, ServerApiError};
use serde_json::{Value, json};

async fn join_as(emu: &RunningEmulator, user: &str, room: &str) -> Ws {
    let token = dev_token(emu, user).await;
    let mut ws = connect(&format!("{}?token={token}", emu.urls.websocket)).await;
    send(&mut ws, json!({"action": "join", "room": room})).await;
    recv_type(&mut ws, "joined").await;
    ws
}

async fn server_api_on(emu: RunningEmulator) {
    let _iam = no_access_denied(&emu);
    let api = ServerApi::new(lambda_client(&emu).await, "PublishFunction");
    let mut a1 = join_as(&emu, "alice", "lobby").await;
    let mut a2 = join_as(&emu, "alice", "lobby").await;
    // Bob uses the Rust client, which must stop when kicked.
    let token = dev_token(&emu, "bob").await;
    let (bob, mut bob_events) = Client::spawn(ClientConfig::new(emu.urls.websocket.clone(), token));
    bob.join("lobby").await.unwrap();
    next_event(&mut bob_events, "bob's join", |e| {
        matches!(e, Event::Joined { .. })
    })
    .await;
    send(
        &mut a1,
        json!({"action": "send", "room": "lobby", "id": "m1", "data": "hi"}),
    )
    .await;
    recv_type(&mut a1, "ack").await;

    let info = api.room_info("lobby").await.unwrap();
    assert_eq!((info.member_count, info.seq), (3, 1));
    let present: Vec<(&str, u32)> = info
        .present
        .iter()
        .map(|m| (m.user.as_str(), m.devices))
        .collect();
    assert_eq!(present, vec![("alice", 2), ("bob", 1)]);

    let first = api.members("lobby", None, Some(2)).await.unwrap();
    assert_eq!(first.members.len(), 2);
    let rest = api
        .members("lobby", first.cursor.as_deref(), Some(2))
        .await
        .unwrap();
    assert_eq!(rest.members.len() + first.members.len(), 3);
    assert!(rest.cursor.is_none());

    let history = api.history("lobby", None, None).await.unwrap();
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].data, json!("hi"));
    assert!(
        api.history("nobody", None, None)
            .await
            .unwrap()
            .messages
            .is_empty()
    );

    // A publish as existing callers send it, without `op`, is unchanged.
    let raw = lambda_client(&emu)
        .await
        .invoke()
        .function_name("PublishFunction")
        .payload(Blob::new(
            json!({"room": "lobby", "data": {"n": 2}}).to_string(),
        ))
        .send()
        .await
        .unwrap();
    assert!(raw.function_error().is_none());
    let report: Value = serde_json::from_slice(raw.payload().unwrap().as_ref()).unwrap();
    assert_eq!(report["seq"], 2);
    let typed = api
        .publish_to_room("lobby", json!(3), Some("p3"))
        .await
        .unwrap();
    assert_eq!(typed.seq, Some(3));

    // Bad requests are typed Lambda function errors.
    let unknown = lambda_client(&emu)
        .await
        .invoke()
        .function_name("PublishFunction")
        .payload(Blob::new(json!({"op": "explode"}).to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.function_error(), Some("Unhandled"));
    let doc: Value = serde_json::from_slice(unknown.payload().unwrap().as_ref()).unwrap();
    assert_eq!(doc["errorType"], "UnknownOperation", "{doc}");
    assert!(matches!(
        api.members("lobby", None, Some(0)).await,
        Err(ServerApiError::InvalidRequest(_))
    ));
    assert!(matches!(
        api.disconnect("bob", 1000, "x", false).await,
        Err(ServerApiError::InvalidRequest(m)) if m.contains("4000")
    ));
    assert_eq!(
        api.disconnect("ghost", 4000, "x", false)
            .await
            .unwrap()
            .disconnected,
        0
    );

    // Kick bob: his client reports why and stops for good.
    let kicked = api
        .disconnect("bob", 4001, "kicked by a moderator", false)
        .await
        .unwrap();
    assert_eq!(kicked.disconnected, 1);
    let why = next_event(&mut bob_events, "the kick", |e| {
        matches!(e, Event::Error(ClientError::Kicked { .. }))
    })
    .await;
    assert!(
        matches!(&why, Event::Error(ClientError::Kicked { code: 4001, reason }) if reason == "kicked by a moderator"),
        "{why:?}"
    );
    let stopped = next_event(&mut bob_events, "the stop", |e| {
        matches!(e, Event::State(_))
    })
    .await;
    assert!(
        matches!(stopped, Event::State(State::Closed { .. })),
        "{stopped:?}"
    );
    // No reconnect: the client's task ends, and its events with it.
    let end =
        tokio::time::timeout(WAIT, async { while bob_events.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "the client stopped reporting");

    // Revoke alice: both devices are told and closed; a new connect with a
    // still-valid token is refused.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    let revoked = api.revoke("alice", until, 4003, "banned").await.unwrap();
    assert_eq!(revoked.disconnected, 2);
    for ws in [&mut a1, &mut a2] {
        let closing = recv_type(ws, "closing").await;
        assert_eq!(
            closing,
            json!({"type": "closing", "code": 4003, "reason": "banned", "reconnect": false})
        );
        closed(ws).await;
    }
    let token = dev_token(&emu, "alice").await;
    let refused = try_connect(&format!("{}?token={token}", emu.urls.websocket), None).await;
    assert_eq!(refused.err(), Some(403));
    let after = api.room_info("lobby").await.unwrap();
    assert_eq!(after.member_count, 0, "{after:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_server_api_in_process() {
    server_api_on(start(config("template.yaml")).await).await;
}

#[tokio::test]
async fn the_server_api_with_every_function_a_process_on_dynamodb() {
    assert_lambda_binaries_fresh();
    let table = format!("roomcast-e2e-{}", uuid::Uuid::new_v4().simple());
    let c: EmulatorConfig = config("template.yaml")
        .dynamodb(common::dynamodb_endpoint(), table, true)
        .functions(FunctionsMode::Process);
    server_api_on(start(c).await).await;
}

/// On DynamoDB (moto), every function as its real binary: a revocation
/// names one user byte for byte. `Mallory` revoked leaves `mallory`
/// connected and free to reconnect; `" mallory"` is refused as no id a
/// token can carry, not trimmed into `mallory`.
#[tokio::test]
async fn revoking_one_user_never_touches_another_that_differs_in_case_or_whitespace() {
    assert_lambda_binaries_fresh();
    let table = format!("roomcast-e2e-{}", uuid::Uuid::new_v4().simple());
    let emu = start(
        config("template.yaml")
            .dynamodb(common::dynamodb_endpoint(), table, true)
            .functions(FunctionsMode::Process),
    )
    .await;
    let _iam = no_access_denied(&emu);
    let api = ServerApi::new(lambda_client(&emu).await, "PublishFunction");
    let mut lower = join_as(&emu, "mallory", "lobby").await;
    let mut upper = join_as(&emu, "Mallory", "lobby").await;
    for near in [" mallory", "mallory ", "mallory\n"] {
        assert!(
            matches!(
                api.revoke(near, 4_000_000_000, 4003, "banned").await,
                Err(ServerApiError::InvalidRequest(ref m)) if m.contains("whitespace")
            ),
            "{near:?}"
        );
    }
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 60_000;
    let revoked = api.revoke("Mallory", until, 4003, "banned").await.unwrap();
    assert_eq!(revoked.disconnected, 1);
    assert_eq!(recv_type(&mut upper, "closing").await["code"], 4003);
    // mallory is still connected and answered...
    send(&mut lower, json!({"action": "heartbeat", "ref": "still"})).await;
    assert_eq!(recv_type(&mut lower, "pong").await["ref"], "still");
    // ...and may connect again; Mallory may not.
    let _again = join_as(&emu, "mallory", "lobby").await;
    let token = dev_token(&emu, "Mallory").await;
    assert_eq!(
        try_connect(&format!("{}?token={token}", emu.urls.websocket), None)
            .await
            .err(),
        Some(403)
    );
    let info = api.room_info("lobby").await.unwrap();
    assert_eq!(info.member_count, 2, "both of mallory's connections");
}
