//! The apps in `examples/`, written the way AWS's WebSocket tutorial and
//! samples write them and containing no emulator-specific code, run
//! unmodified on `roomcast dev` with moto: their tables come from their
//! templates, their SDK from the runtime (AWS Lambda Developer Guide,
//! "Building Lambda functions with Node.js": "Runtime versions nodejs18.x
//! and later include version 3 of the SDK"; "Building Lambda functions with
//! Python": boto3 included), and their callbacks reach `@connections` over
//! TLS at `https://{domainName}/{stage}` (Node.js) and at the API's
//! `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` (Python),
//! as API Gateway Developer Guide, "Use @connections commands in your
//! backend service", writes the callback URL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::emulator::*;
use roomcast_emulator::RunningEmulator;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A Python with awslambdaric and without boto3, so that the functions'
/// boto3 is the one the emulator provides, as Lambda's runtime provides it.
fn bare_python() -> String {
    let python = match std::env::var("ROOMCAST_TEST_PYTHON_BARE") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "ROOMCAST_TEST_PYTHON_BARE is not set: run the suite with `bash infra/test.sh`, which makes \
             target/infra/venv-bare (awslambdaric, no boto3) and installs the examples' runtime SDKs."
        ),
    };
    let has_boto3 = std::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .status()
        .expect("run the bare Python")
        .success();
    assert!(
        !has_boto3,
        "{python} has boto3 of its own; the test needs one without"
    );
    python
}

/// Fails unless the examples' runtime SDKs are already in the cache: the
/// emulator would fetch them from the registries, and tests stay on
/// 127.0.0.1.
fn assert_sdk_cached(dir: &str) {
    let cache = cache_dir();
    let installed = match dir {
        "node-chat" => roomcast_emulator::lambda::runtime_sdk::node_sdk_dir(&cache)
            .join("node_modules/@aws-sdk/lib-dynamodb/package.json"),
        _ => roomcast_emulator::lambda::runtime_sdk::boto3_dir(&cache).join("boto3"),
    };
    assert!(
        installed.exists(),
        "{} is missing: run `bash infra/test.sh`, or `roomcast runtimes install --template examples/{dir}/template.yaml \
         --python \"$ROOMCAST_TEST_PYTHON_BARE\"` with ROOMCAST_CACHE_DIR={}",
        installed.display(),
        cache.display()
    );
}

/// The example at `dir`, on moto, with its connections table named
/// `table` (the template's `TableName` parameter, as
/// `--parameter-overrides TableName=…` sets it).
async fn example(dir: &str, table: &str) -> RunningEmulator {
    assert_sdk_cached(dir);
    start(
        config(&format!("examples/{dir}/template.yaml"))
            .python(bare_python())
            .parameter("TableName", table)
            .dynamodb(common::dynamodb_endpoint(), "roomcast-unused", true)
            // The functions' Node SDK v3 and boto3 signatures are checked
            // (`--verify-sigv4`), against the credentials they are given.
            .verify_sigv4(Some(roomcast_emulator::sigv4::Verifier::from_environment())),
    )
    .await
}

/// The next text frame, as text.
async fn text(ws: &mut Ws) -> String {
    match next(ws).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The table's items as (connectionId → name).
async fn connections(db: &aws_sdk_dynamodb::Client, table: &str) -> HashMap<String, String> {
    let out = db.scan().table_name(table).send().await.expect("scan");
    out.items()
        .iter()
        .map(|i| {
            let s = |k: &str| {
                i.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (s("connectionId"), s("name"))
        })
        .collect()
}

/// Waits until the table's connections satisfy `pred`.
async fn wait_table(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    what: &str,
    pred: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = connections(db, table).await;
        if pred(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; table: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stale connection left in the app's table, as a `$disconnect` that
/// never came would leave it: the app's own Gone handling must remove it.
async fn plant_ghost(db: &aws_sdk_dynamodb::Client, table: &str, extra: &[(&str, &str)]) {
    let mut put = db
        .put_item()
        .table_name(table)
        .item(
            "connectionId",
            AttributeValue::S("Z2hvc3QtY29ubmVjdGlvbg=".into()),
        )
        .item("name", AttributeValue::S("ghost".into()));
    for (k, v) in extra {
        put = put.item(*k, AttributeValue::S((*v).into()));
    }
    put.send().await.expect("put the ghost");
}

#[tokio::test]
async fn the_node_example_chats_and_cleans_up_unmodified() {
    let table = format!("node-chat-{}", uuid::Uuid::new_v4().simple());
    let emu = example("node-chat", &table).await;
    let db = common::client(None).await;
    // The template's table, created under the name the template gives it.
    assert!(connections(&db, &table).await.is_empty());
    let url = &emu.urls.websocket;
    let mut alice = connect(&format!("{url}?name=alice")).await;
    let mut bob = connect(&format!("{url}?name=bob")).await;
    let stored = wait_table(&db, &table, "both connections stored", |t| t.len() == 2).await;
    let bob_id = stored
        .iter()
        .find(|(_, n)| *n == "bob")
        .map(|(id, _)| id.clone())
        .unwrap();

    send(
        &mut alice,
        json!({"action": "sendmessage", "message": "hello"}),
    )
    .await;
    assert_eq!(text(&mut alice).await, "alice: hello");
    assert_eq!(text(&mut bob).await, "alice: hello");

    send(&mut bob, json!({"action": "help"})).await;
    assert!(
        text(&mut bob)
            .await
            .starts_with("Use the sendmessage route")
    );

    // $disconnect: the app removes its own item.
    bob.close(None).await.unwrap();
    wait_table(&db, &table, "bob's item removed by $disconnect", |t| {
        !t.contains_key(&bob_id)
    })
    .await;

    // A connection API Gateway no longer knows: the app's post gets 410
    // (GoneException, by type) and it removes the item; alice still hears.
    plant_ghost(&db, &table, &[]).await;
    send(
        &mut alice,
        json!({"action": "sendmessage", "message": "anyone?"}),
    )
    .await;
    assert_eq!(text(&mut alice).await, "alice: anyone?");
    wait_table(&db, &table, "the ghost removed after its 410", |t| {
        t.len() == 1 && t.values().all(|n| n == "alice")
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn the_python_example_chats_in_rooms_and_cleans_up_unmodified() {
    let table = format!("python-chat-{}", uuid::Uuid::new_v4().simple());
    let emu = example("python-chat", &table).await;
    let db = common::client(None).await;
    // The table has the template's index and TTL, not just its keys.
    let described = db.describe_table().table_name(&table).send().await.unwrap();
    let t = described.table().unwrap();
    let gsi: Vec<&str> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    assert_eq!(gsi, vec!["byRoom"]);
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expiresAt")
    );

    let url = &emu.urls.websocket;
    let mut ann = connect(&format!("{url}?name=ann&room=blue")).await;
    let mut ben = connect(&format!("{url}?name=ben&room=blue")).await;
    let mut cyd = connect(&format!("{url}?name=cyd&room=green")).await;
    wait_table(&db, &table, "three connections stored", |t| t.len() == 3).await;

    send(
        &mut ann,
        json!({"action": "sendmessage", "message": "hi blue"}),
    )
    .await;
    assert_eq!(text(&mut ann).await, "ann: hi blue");
    assert_eq!(text(&mut ben).await, "ann: hi blue");
    send(
        &mut cyd,
        json!({"action": "sendmessage", "message": "hi green"}),
    )
    .await;
    assert_eq!(
        text(&mut cyd).await,
        "cyd: hi green",
        "cyd hears only its own room"
    );

    plant_ghost(&db, &table, &[("room", "blue")]).await;
    ben.close(None).await.unwrap();
    wait_table(&db, &table, "ben's item removed by $disconnect", |t| {
        !t.values().any(|n| n == "ben")
    })
    .await;
    send(
        &mut ann,
        json!({"action": "sendmessage", "message": "still here?"}),
    )
    .await;
    assert_eq!(text(&mut ann).await, "ann: still here?");
    wait_table(&db, &table, "the ghost removed after its 410", |t| {
        !t.values().any(|n| n == "ghost")
    })
    .await;
    emu.shutdown().await;
}
