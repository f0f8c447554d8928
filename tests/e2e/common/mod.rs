//! Shared test support: the moto DynamoDB server started by the test command.
// Test support: a failed precondition here is a test failure, by design.
#![allow(dead_code, clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub(crate) mod emulator;
pub(crate) mod sink;
pub(crate) mod throttle;

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use roomcast_aws::dynamodb::{self, CallCounter, DynamoStore, StoreOptions};
use roomcast_aws::store::Store;
use roomcast_emulator::template::Template;

/// moto's endpoint, from the test command. A missing server is a failure
/// with instructions, never a skip.
pub(crate) fn dynamodb_endpoint() -> String {
    match std::env::var("ROOMCAST_TEST_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "ROOMCAST_TEST_DYNAMODB_ENDPOINT is not set. These tests need a DynamoDB-wire server: \
             run the whole suite with `bash infra/test.sh`, or start moto with \
             `export ROOMCAST_TEST_DYNAMODB_ENDPOINT=$(bash infra/moto-start.sh)` and run cargo test again."
        ),
    }
}

/// AWS settings that work against moto (any static credentials do).
pub(crate) async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "roomcast-tests",
        ))
        .load()
        .await
}

/// A client for moto, optionally counting its requests.
pub(crate) async fn client(counter: Option<&CallCounter>) -> aws_sdk_dynamodb::Client {
    let sdk = sdk().await;
    let mut builder = dynamodb::config_builder(&sdk, Some(&dynamodb_endpoint()));
    if let Some(c) = counter {
        builder = builder.interceptor(c.clone());
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// Creates a fresh table from template.yaml's definition; returns its name.
pub(crate) async fn fresh_table(client: &aws_sdk_dynamodb::Client) -> String {
    let template_path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let def = Template::load(std::path::Path::new(template_path))
        .expect("template.yaml")
        .table_definition()
        .expect("table definition");
    let name = format!("roomcast-test-{}", uuid::Uuid::new_v4().simple());
    let created = dynamodb::create_table(client, &name, &def)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "could not create a table on {}: {e}. Is moto running? (bash infra/moto-start.sh)",
                dynamodb_endpoint()
            )
        });
    assert!(created);
    name
}

/// A DynamoDB store on a fresh table.
pub(crate) async fn dynamo_store() -> Arc<dyn Store> {
    dynamo_store_with(None, StoreOptions::default()).await.0
}

/// A store on a fresh table, with a counter and options.
pub(crate) async fn dynamo_store_with(
    counter: Option<&CallCounter>,
    options: StoreOptions,
) -> (Arc<dyn Store>, aws_sdk_dynamodb::Client, String) {
    let client = client(counter).await;
    let table = fresh_table(&client).await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone(), options));
    if let Some(c) = counter {
        c.take(); // table creation does not count
    }
    (store, client, table)
}

/// The reply a client sees to `frame` from the domain run on `ctx`: the
/// route's reply, or the ack a `send` posts ahead of its fan-out.
pub(crate) async fn domain_reply(
    ctx: &roomcast_core::routes::Context<'_>,
    gateway: &roomcast_core::gateway::memory::MemoryGateway,
    conn: &str,
    frame: &serde_json::Value,
) -> serde_json::Value {
    let reply = roomcast_core::routes::message(
        ctx,
        None,
        roomcast_core::routes::Inbound {
            connection_id: conn,
            identity: None,
            body: Some(&frame.to_string()),
            is_binary: false,
            received_at: None,
        },
    )
    .await
    .map(|r| serde_json::to_value(&r).unwrap());
    reply
        .or_else(|| {
            gateway
                .take_where(conn, |f| f["type"] == "ack")
                .into_iter()
                .next()
        })
        .expect("a reply or an early ack")
}
