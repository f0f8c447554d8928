//! DynamoDB throttling the room's counter item and the message's commit,
//! through a proxy in front of moto that answers with DynamoDB's own
//! `ThrottlingException` (what an on-demand table returns for a hot
//! partition). The SDK retries; past its attempts the client gets
//! `unavailable` with its `ref`, resends the same id, and the message is
//! stored once, with nothing lost and no hole left for good.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use common::throttle::Throttler;
use roomcast_aws::dynamodb::{self, DynamoStore, StoreOptions};
use roomcast_core::auth::{Identity, RoomRights};
use roomcast_core::clock::{Clock, ManualClock};
use roomcast_core::config::Config;
use roomcast_core::events::Outbox;
use roomcast_core::gateway::memory::MemoryGateway;
use roomcast_core::metrics::NoMetrics;
use roomcast_core::routes::{self, Context};
use roomcast_core::store::{Store, sequencer};
use serde_json::{Value, json};

const NOW: i64 = 1_900_000_000_000;

struct World {
    throttler: Throttler,
    store: Arc<dyn Store>,
    gateway: MemoryGateway,
    clock: ManualClock,
    config: Config,
    outbox: Outbox,
}

impl World {
    async fn new() -> Self {
        let throttler = Throttler::start(common::dynamodb_endpoint()).await;
        let sdk = common::sdk().await;
        // The SDK's standard retry (3 attempts), with a short backoff so
        // the test does not sleep for seconds; production keeps the
        // default backoff.
        let retry = RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5));
        let client = aws_sdk_dynamodb::Client::from_conf(
            dynamodb::config_builder(&sdk, Some(&throttler.endpoint))
                .retry_config(retry)
                .build(),
        );
        let table = common::fresh_table(&client).await;
        let store: Arc<dyn Store> =
            Arc::new(DynamoStore::new(client, table, StoreOptions::default()));
        let w = Self {
            throttler,
            store,
            gateway: MemoryGateway::new(),
            clock: ManualClock::new(NOW),
            config: Config::default(),
            outbox: Outbox::off(),
        };
        for (conn, user) in [("a1", "alice"), ("b1", "bob")] {
            let identity = Identity {
                user: user.into(),
                name: user.into(),
                exp: NOW / 1000 + 3600,
                rooms: RoomRights::all(),
                direct: false,
            };
            routes::connect(
                &*w.store,
                &w.clock,
                &w.config,
                conn,
                &identity,
                &Outbox::off(),
            )
            .await
            .unwrap();
        }
        w
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            store: &*self.store,
            gateway: &self.gateway,
            clock: &self.clock,
            config: &self.config,
            metrics: &NoMetrics,
            dispatch: None,
            events: &self.outbox,
        }
    }

    /// The reply to a frame: the route's, or the ack posted ahead of it.
    async fn call(&self, conn: &str, frame: serde_json::Value) -> serde_json::Value {
        self.clock.advance_ms(1_000);
        common::domain_reply(&self.ctx(), &self.gateway, conn, &frame).await
    }

    async fn settled(&self) -> sequencer::Settled {
        let options = sequencer::SettleOptions {
            hole_timeout: self.config.hole_timeout.as_millis() as i64,
            history_ttl: self.config.retention.history.as_millis() as i64,
        };
        sequencer::settle(&*self.store, "r", self.clock.now_ms(), options)
            .await
            .unwrap()
    }
}

fn send(id: &str, reference: u64) -> Value {
    json!({"action": "send", "room": "r", "id": id, "data": id, "ref": reference})
}

#[tokio::test]
async fn a_counter_throttled_twice_is_retried_by_the_sdk_and_the_send_lands() {
    let w = World::new().await;
    w.throttler.throttle("UpdateItem", "ADD seq", 2);
    let ack = w.call("a1", send("m1", 1)).await;
    assert_eq!(ack["seq"], 1, "{ack}");
    assert_eq!(w.throttler.hits(), 2, "both throttles were met and retried");
    assert_eq!(w.settled().await.seq, 1);
}

#[tokio::test]
async fn a_counter_throttled_past_the_retries_takes_no_seq_and_the_resend_lands_once() {
    let w = World::new().await;
    w.throttler.throttle("UpdateItem", "ADD seq", 1_000);
    let reply = w.call("a1", send("m1", 7)).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "unavailable");
    assert_eq!(reply["ref"], 7);
    assert_eq!(w.throttler.hits(), 3, "the SDK's three attempts");
    assert_eq!(w.store.seq_state("r").await.unwrap().top, 0, "no seq taken");
    w.throttler.throttle("UpdateItem", "ADD seq", 0);
    let ack = w.call("a1", send("m1", 8)).await;
    assert_eq!((ack["seq"].clone(), ack.get("duplicate")), (json!(1), None));
    assert_eq!(w.settled().await.seq, 1);
}

/// The commit throttled after the seq was taken: a hole. The resend takes a
/// new seq; other members' clients wait behind the hole until it is closed
/// (the hole timeout), then go on. Nothing is lost or stored twice.
#[tokio::test]
async fn a_commit_throttled_past_the_retries_leaves_a_hole_that_is_closed_and_nothing_is_lost() {
    let w = World::new().await;
    w.throttler.throttle("TransactWriteItems", "MSG#", 1_000);
    let reply = w.call("a1", send("m1", 1)).await;
    assert_eq!(reply["code"], "unavailable", "{reply}");
    assert_eq!(
        w.store.seq_state("r").await.unwrap().top,
        1,
        "the seq was taken"
    );
    w.throttler.throttle("TransactWriteItems", "MSG#", 0);
    let ack = w.call("a1", send("m1", 2)).await;
    assert_eq!(ack["seq"], 2, "{ack}");
    let open = w.settled().await;
    assert_eq!(open.seq, 0, "seq 1 is still open");
    assert_eq!(
        open.above.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2]
    );
    w.clock.advance_ms(w.config.hole_timeout.as_millis() as i64);
    let joined = w
        .call("b1", json!({"action": "join", "room": "r", "since": 0}))
        .await;
    assert_eq!(joined["seq"], 2, "closed, and passed: {joined}");
    let missed: Vec<(u64, String)> = joined["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(missed, vec![(2, "m1".to_owned())], "stored once");
    assert!(joined.get("truncated").is_none(), "{joined}");
}
