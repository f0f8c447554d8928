//! Smoke test against a deployed stack on real AWS. Not run in CI (ignored);
//! run it after `sam deploy`:
//!
//! ```sh
//! ROOMCAST_DEPLOYED_URL=wss://ID.execute-api.REGION.amazonaws.com/prod \
//! ROOMCAST_DEPLOYED_TOKEN=<a JWT whose rooms claim allows "smoke.*"> \
//! AWS_PROFILE=... cargo test --test deployed -- --ignored
//! ```
//!
//! The AWS credentials need `execute-api:ManageConnections` on the stage, to
//! check GoneException cleanup through the Management API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use roomcast_client::{Client, ClientConfig, Event, State};
use serde_json::json;
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

fn setting(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{name} is not set: this suite needs a deployed stack (see the top of tests/deployed.rs)")
    })
}

async fn until<T>(
    events: &mut Receiver<Event>,
    what: &str,
    mut f: impl FnMut(Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events
                .recv()
                .await
                .unwrap_or_else(|| panic!("events ended waiting for {what}"));
            if let Some(v) = f(e) {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn connected(url: &str, token: &str, room: &str) -> (Client, Receiver<Event>, String) {
    let (client, mut events) = Client::spawn(ClientConfig::new(url, token));
    let id = until(&mut events, "open", |e| match e {
        Event::State(State::Open { connection_id }) => Some(connection_id),
        Event::State(State::Closed { reason }) => panic!("closed: {reason}"),
        _ => None,
    })
    .await;
    client.join(room).await.unwrap();
    until(&mut events, "joined", |e| {
        matches!(e, Event::Joined { .. }).then_some(())
    })
    .await;
    (client, events, id)
}

#[tokio::test]
#[ignore = "needs a deployed stack: set ROOMCAST_DEPLOYED_URL and ROOMCAST_DEPLOYED_TOKEN, run with --ignored"]
async fn a_deployed_stack_connects_joins_sends_receives_and_cleans_up_gone_connections() {
    let url = setting("ROOMCAST_DEPLOYED_URL");
    let token = setting("ROOMCAST_DEPLOYED_TOKEN");
    let room = format!("smoke.{}", uuid::Uuid::new_v4().simple());
    let (sender, _sender_events, _) = connected(&url, &token, &room).await;
    let (receiver, mut receiver_events, receiver_id) = connected(&url, &token, &room).await;

    let ack = sender.send(&room, json!({"smoke": 1})).await.unwrap();
    assert_eq!(ack.seq, 1);
    let got = until(&mut receiver_events, "the message", |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got["data"], json!({"smoke": 1}));

    // Close the receiver through the Management API: a send to the room
    // still succeeds (its cleanup is $disconnect's or the fan-out's Gone
    // handling), and the connection is gone for good.
    // The stage's endpoint: wss:// in AWS, ws:// for a rehearsal on
    // `roomcast dev` (infra/rehearse.sh).
    let endpoint = url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let api = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(&endpoint)
            .build(),
    );
    receiver.close().await;
    api.delete_connection()
        .connection_id(&receiver_id)
        .send()
        .await
        .ok();
    sender.send(&room, json!({"smoke": 2})).await.unwrap();
    let err = api
        .post_to_connection()
        .connection_id(&receiver_id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{err:?}"
    );
    let ack = sender.send(&room, json!({"smoke": 3})).await.unwrap();
    assert_eq!(
        ack.seq, 3,
        "the room keeps working after the member is gone"
    );
    sender.close().await;
}
