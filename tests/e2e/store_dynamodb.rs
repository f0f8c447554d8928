//! The DynamoDB adapter against a real DynamoDB-wire server (moto, started
//! by `bash infra/test.sh`): the whole conformance suite, the exact cost of
//! each access pattern, and bad items and faults.
// An integration-test crate: every helper here is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_aws::dynamodb::{CallCounter, DynamoStore, StoreOptions};
use roomcast_core::auth::{Identity, Right, RoomRights};
use roomcast_core::clock::ManualClock;
use roomcast_core::config::Config;
use roomcast_core::events::{Outbox, RecordedEvents};
use roomcast_core::gateway::memory::MemoryGateway;
use roomcast_core::metrics::NoMetrics;
use roomcast_core::protocol::Sender;
use roomcast_core::routes::{self, Context};
use roomcast_core::shard::Dispatch;
use roomcast_core::shard::memory::MemoryDispatch;
use roomcast_core::store::{ConnectionRecord, NewMessage, Store, StoreError, sequencer};
use serde_json::json;

roomcast_core::store_conformance_tests!(common::dynamo_store());

const NOW: i64 = 1_900_000_000_000;

fn identity(user: &str) -> Identity {
    Identity {
        user: user.into(),
        name: user.into(),
        exp: NOW / 1000 + 3600,
        rooms: RoomRights::all(),
        direct: true,
    }
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

struct CostWorld {
    store: std::sync::Arc<dyn Store>,
    counter: CallCounter,
    gateway: MemoryGateway,
    clock: ManualClock,
    config: Config,
    /// Large rooms go to shards here when set; else every fan-out is inline.
    dispatch: Option<MemoryDispatch>,
    /// Events: off unless a test turns them on.
    outbox: Outbox,
}

impl CostWorld {
    async fn new(member_page_limit: Option<i32>) -> Self {
        let counter = CallCounter::new();
        let options = StoreOptions {
            member_page_limit,
            ..StoreOptions::default()
        };
        let (store, _, _) = common::dynamo_store_with(Some(&counter), options).await;
        Self {
            store,
            counter,
            gateway: MemoryGateway::new(),
            clock: ManualClock::new(NOW),
            config: Config::default(),
            dispatch: None,
            outbox: Outbox::off(),
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            store: &*self.store,
            gateway: &self.gateway,
            clock: &self.clock,
            config: &self.config,
            metrics: &NoMetrics,
            dispatch: self.dispatch.as_ref().map(|d| d as &dyn Dispatch),
            events: &self.outbox,
        }
    }

    /// Turns events on: batches land in the returned recorder, one per
    /// `Events::put`, which is one PutEvents call for up to 10 events.
    fn with_events(&mut self) -> std::sync::Arc<RecordedEvents> {
        let events = std::sync::Arc::new(RecordedEvents::default());
        self.outbox = Outbox::new(Some(events.clone()), true);
        events
    }

    async fn connect(&self, conn: &str, user: &str) {
        routes::connect(
            &*self.store,
            &self.clock,
            &self.config,
            conn,
            &identity(user),
            &self.outbox,
        )
        .await
        .unwrap();
    }

    /// Connects `conn` with join and send rights but not presence.
    async fn connect_silent(&self, conn: &str, user: &str) {
        let identity = Identity {
            rooms: RoomRights::new(BTreeMap::from([(
                "*".to_owned(),
                vec![Right::Join, Right::Send],
            )])),
            ..identity(user)
        };
        routes::connect(
            &*self.store,
            &self.clock,
            &self.config,
            conn,
            &identity,
            &self.outbox,
        )
        .await
        .unwrap();
    }

    /// A frame from a client within its rate (a second after its last):
    /// the usual frame, whose rate-limit charge is one conditional update.
    async fn call(&self, conn: &str, frame: serde_json::Value) -> serde_json::Value {
        self.clock.advance_ms(1_000);
        common::domain_reply(&self.ctx(), &self.gateway, conn, &frame).await
    }

    /// Connects `n` members into `room` without counting.
    async fn populate(&self, room: &str, n: usize) {
        self.populate_with(room, 0..n, true).await;
    }

    /// Joins members `m{i}` for `i` in `ids`, with or without the presence right.
    async fn populate_with(&self, room: &str, ids: std::ops::Range<usize>, presence: bool) {
        for i in ids {
            let m = roomcast_aws::store::Membership {
                room: room.into(),
                connection_id: format!("m{i}"),
                user: format!("user{i}"),
                name: format!("user{i}"),
                presence,
                joined_at: NOW,
                expires_at: NOW + 3_600_000,
                token_exp: i64::MAX,
            };
            self.store.join(&m).await.unwrap();
        }
        self.counter.take();
    }
}

#[tokio::test]
async fn connect_costs_one_batch_write_and_the_revocation_read() {
    // The connection and its user index (one BatchWriteItem), then whether
    // the user is revoked (one consistent GetItem, after the write so that
    // a revoke racing the connect finds one or the other).
    let w = CostWorld::new(None).await;
    w.connect("c1", "alice").await;
    assert_eq!(
        w.counter.take(),
        counts(&[("BatchWriteItem", 1), ("GetItem", 1)])
    );
}

#[tokio::test]
async fn a_presence_join_costs_two_writes_one_roster_query_and_reads() {
    let w = CostWorld::new(None).await;
    w.connect("c1", "alice").await;
    w.populate("lobby", 5).await;
    let r = w
        .call("c1", json!({"action": "join", "room": "lobby"}))
        .await;
    assert_eq!(r["type"], "joined");
    // touch: one conditional UpdateItem (it returns the connection); join:
    // reverse + watcher copy (one BatchWriteItem), member PutItem, the member
    // count (ADD, an UpdateItem that returns the new count); roster (a
    // presence joiner gets it, and it also answers whom to tell): one Query
    // of at most the cap, after a read of the member set's version (the
    // warm function's member cache); the room's counter to settle: GetItem.
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("BatchWriteItem", 1),
            ("GetItem", 2),
            ("PutItem", 1),
            ("Query", 1),
            ("UpdateItem", 2)
        ])
    );
}

async fn send_cost(page_limit: Option<i32>, members: usize) -> BTreeMap<String, usize> {
    let w = CostWorld::new(page_limit).await;
    w.connect("sender", "alice").await;
    w.populate("room", members).await;
    let ack = w
        .call(
            "sender",
            json!({"action": "send", "room": "room", "id": "m1", "data": "hi"}),
        )
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    for i in 0..members {
        assert_eq!(
            w.gateway.take(&format!("m{i}")).len(),
            1,
            "member {i} got the message"
        );
    }
    w.counter.take()
}

#[tokio::test]
async fn send_to_a_room_costs_one_query_page_per_page_of_members() {
    // touch (one conditional UpdateItem), the retry check (GetItem of the
    // marker), the seq (an unconditional ADD, UpdateItem), marker + history
    // committed together (TransactWriteItems), members (Query per page),
    // then, after the ack, the settled watermark raised to the new seq
    // (UpdateItem). Nothing another send can conflict with.
    let base = [("GetItem", 1), ("TransactWriteItems", 1), ("UpdateItem", 3)];
    let mut one_page = counts(&base);
    one_page.insert("Query".into(), 1);
    assert_eq!(send_cost(None, 50).await, one_page);
    let mut three_pages = counts(&base);
    three_pages.insert("Query".into(), 3);
    assert_eq!(
        send_cost(Some(40), 100).await,
        three_pages,
        "100 members at 40 per page"
    );
}

#[tokio::test]
async fn history_page_costs_one_query() {
    let w = CostWorld::new(None).await;
    w.connect("c1", "alice").await;
    for i in 0..5 {
        w.call(
            "c1",
            json!({"action": "send", "room": "r", "id": format!("m{i}"), "data": i}),
        )
        .await;
    }
    w.counter.take();
    let page = w
        .call("c1", json!({"action": "history", "room": "r", "limit": 3}))
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 3);
    assert_eq!(w.counter.take(), counts(&[("Query", 1), ("UpdateItem", 1)]));
}

#[tokio::test]
async fn disconnect_from_k_rooms_costs_one_query_batched_deletes_and_a_watcher_query_per_room() {
    let w = CostWorld::new(None).await;
    w.connect("c1", "alice").await;
    let k: usize = 30;
    for i in 0..k {
        let r = w
            .call("c1", json!({"action": "join", "room": format!("room{i}")}))
            .await;
        assert_eq!(r["type"], "joined");
        w.clock.advance_ms(100);
    }
    w.counter.take();
    routes::disconnect(&w.ctx(), "c1").await.unwrap();
    // 1 Query on the connection partition; 2 + 3k deletes (connection, user
    // index; per room reverse, member and watcher copy) in batches of 25;
    // per room, the member count's decrement (UpdateItem), its read
    // (GetItem: within the presence cap?) and the watcher Query (empty here,
    // so nothing more).
    let batches = (2 + 3 * k).div_ceil(25);
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("BatchWriteItem", batches),
            ("GetItem", k),
            ("Query", 1 + k),
            ("UpdateItem", k)
        ])
    );
    assert!(w.store.get_connection("c1", NOW).await.unwrap().is_none());
}

/// Joining then leaving a room without the presence right, where nobody
/// watches presence: what it costs, for a room of `members` (40 per page).
async fn silent_join_and_disconnect_cost(
    members: usize,
) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut w = CostWorld::new(Some(40)).await;
    // Both rooms within the presence cap: the same path, whatever the size.
    w.config.presence_max = 1000;
    w.connect_silent("c1", "alice").await;
    w.populate_with("big", 0..members, false).await;
    let r = w.call("c1", json!({"action": "join", "room": "big"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    let join = w.counter.take();
    routes::disconnect(&w.ctx(), "c1").await.unwrap();
    (join, w.counter.take())
}

#[tokio::test]
async fn joining_and_leaving_cost_the_same_in_a_room_of_5_and_of_200() {
    let small = silent_join_and_disconnect_cost(5).await;
    let big = silent_join_and_disconnect_cost(200).await;
    assert_eq!(small, big, "no per-member reads on join or leave");
    // join: touch (one UpdateItem), reverse + member PutItem, the member
    // count (ADD, which returns it), the (empty) watcher range (one Query),
    // current seq (GetItem).
    assert_eq!(
        big.0,
        counts(&[
            ("GetItem", 1),
            ("PutItem", 2),
            ("Query", 1),
            ("UpdateItem", 2)
        ])
    );
    // disconnect: the connection partition (Query), batched deletes, the
    // count's decrement and read, the (empty) watcher range (Query).
    // Nothing else: nobody to tell.
    assert_eq!(
        big.1,
        counts(&[
            ("BatchWriteItem", 1),
            ("GetItem", 1),
            ("Query", 2),
            ("UpdateItem", 1)
        ])
    );
}

#[tokio::test]
async fn a_departure_from_a_big_room_reads_only_its_watchers_and_the_users_devices() {
    let mut w = CostWorld::new(Some(40)).await;
    w.config.presence_max = 1000;
    w.connect_silent("c1", "alice").await;
    w.populate_with("big", 0..200, false).await;
    w.populate_with("big", 200..203, true).await;
    w.call("c1", json!({"action": "join", "room": "big"})).await;
    for i in 200..203 {
        let joined = w.gateway.take(&format!("m{i}"));
        assert_eq!(joined.len(), 1, "watcher m{i} told of the join: {joined:?}");
        assert_eq!(joined[0]["event"], "joined", "{joined:?}");
    }
    w.counter.take();
    routes::disconnect(&w.ctx(), "c1").await.unwrap();
    // Query the connection, batched deletes, the count's decrement and
    // read, the watcher range (one page of 3), alice's other devices (the
    // user index: none left, so no BatchGet).
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("BatchWriteItem", 1),
            ("GetItem", 1),
            ("Query", 3),
            ("UpdateItem", 1)
        ])
    );
    for i in 200..203 {
        let left = w.gateway.take(&format!("m{i}"));
        assert_eq!(
            left.len(),
            1,
            "watcher m{i} told of the departure: {left:?}"
        );
        assert_eq!(left[0]["event"], "left", "{left:?}");
    }
    assert!(w.gateway.take("m0").is_empty(), "non-watchers are not told");
}

/// A presence join's cost in a room of `members` presence members.
async fn presence_join_cost(members: usize) -> (BTreeMap<String, usize>, serde_json::Value) {
    let (calls, _, reply) =
        presence_join_cost_capped(members, Config::default().presence_max).await;
    (calls, reply)
}

/// A presence join's calls, the items its Queries returned, and the reply.
async fn presence_join_cost_capped(
    members: usize,
    presence_max: usize,
) -> (BTreeMap<String, usize>, usize, serde_json::Value) {
    let mut w = CostWorld::new(Some(40)).await;
    w.config.presence_max = presence_max;
    w.connect("c1", "alice").await;
    w.populate(&format!("p{members}"), members).await;
    let r = w
        .call(
            "c1",
            json!({"action": "join", "room": format!("p{members}")}),
        )
        .await;
    (w.counter.take(), w.counter.take_query_items(), r)
}

#[tokio::test]
async fn a_presence_join_past_the_cap_costs_what_it_costs_in_a_small_room() {
    // Filling a presence room is linear: past the cap (100) a join reads one
    // roster page of cap + 1 and the count, and tells nobody.
    let (small, r) = presence_join_cost(5).await;
    assert_eq!(r["memberCount"], 6);
    let (big, r) = presence_join_cost(250).await;
    assert_eq!(r["memberCount"], 251);
    assert_eq!(r["rosterTruncated"], true);
    let listed: u64 = r["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["devices"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, 100, "the roster stops at the cap");
    // The roster is one Query of at most cap + 1 items, in either room.
    assert_eq!(big, small, "no per-member reads beyond the capped roster");
}

#[tokio::test]
async fn an_uncapped_presence_join_reads_the_whole_room() {
    // What the cap prevents (BENCHMARKS.md, presence fill). The calls are
    // the same either way (one roster Query, up to DynamoDB's 1 MB page);
    // what grows is the items read, and with them the read units: with no
    // cap every join reads the whole room, so filling it is quadratic.
    let (small_calls, small_items, _) = presence_join_cost_capped(5, 1_000_000).await;
    let (calls, items, r) = presence_join_cost_capped(250, 1_000_000).await;
    assert_ne!(r["rosterTruncated"], true, "{r}");
    assert_eq!(r["memberCount"], 251);
    assert_eq!(
        calls, small_calls,
        "no more calls, as long as a page holds the room"
    );
    assert_eq!(
        (small_items, items),
        (6, 251),
        "the roster is the whole room"
    );
    // With the cap, the same join reads at most cap + 1 members.
    let (capped_calls, capped_items, _) = presence_join_cost_capped(250, 100).await;
    assert_eq!(capped_calls, calls);
    assert_eq!(capped_items, 101);
}

#[tokio::test]
async fn a_send_to_a_large_room_reads_one_page_and_hands_the_rest_to_shards() {
    let mut w = CostWorld::new(None).await;
    w.config.fanout.inline_max = 10;
    w.config.fanout.shard_size = 20;
    w.dispatch = Some(MemoryDispatch::new());
    w.connect("sender", "alice").await;
    w.populate("room", 100).await;
    let ack = w
        .call(
            "sender",
            json!({"action": "send", "room": "room", "id": "m1", "data": "hi"}),
        )
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    // touch, the retry check, the seq, the transaction, the member set's
    // version and one member page (of 11; a second message with the room
    // unchanged reads the version only), the settled watermark.
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("GetItem", 2),
            ("Query", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 3)
        ])
    );
    let queue = w.dispatch.as_ref().unwrap();
    assert_eq!(queue.pending(), 1);
    let mut shards = 0;
    while let Some(shard) = queue.pop() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        routes::fanout(&w.ctx(), queue, None, shard, deadline)
            .await
            .unwrap();
        shards += 1;
    }
    // The rest (89) in pages of 4 shards (80): two Queries, then nothing
    // but posts.
    assert_eq!(w.counter.take(), counts(&[("Query", 2)]));
    assert_eq!(shards, 1 + 4 + 1, "the first page, then 80 in 4 and 9 in 1");
    for i in 0..100 {
        assert_eq!(w.gateway.take(&format!("m{i}")).len(), 1, "member {i}");
    }
}

#[tokio::test]
async fn items_from_a_future_version_are_read_and_extra_attributes_ignored() {
    let (store, client, table) = common::dynamo_store_with(None, StoreOptions::default()).await;
    let c = ConnectionRecord::new("c1", &identity("alice"), NOW, NOW + 3_600_000);
    store.put_connection(&c).await.unwrap();
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("CONN#c1".into()))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET futureField = :f, futureMap = :m")
        .expression_attribute_values(":f", AttributeValue::S("v2".into()))
        .expression_attribute_values(":m", AttributeValue::M(Default::default()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get_connection("c1", NOW).await.unwrap(), Some(c));
}

#[tokio::test]
async fn corrupt_items_are_a_typed_error_naming_the_key() {
    let (store, client, table) = common::dynamo_store_with(None, StoreOptions::default()).await;
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("CONN#bad".into()))
        .item("sk", AttributeValue::S("META".into()))
        .item("connectionId", AttributeValue::S("bad".into()))
        .item("tokenExp", AttributeValue::S("not a number".into()))
        .item("expiresAt", AttributeValue::N("9999999999".into()))
        .send()
        .await
        .unwrap();
    match store.get_connection("bad", NOW).await {
        Err(StoreError::CorruptItem { key, reason }) => {
            assert_eq!(key, "CONN#bad/META");
            assert!(reason.contains("user"), "{reason}");
        }
        other => panic!("expected CorruptItem, got {other:?}"),
    }
}

#[tokio::test]
async fn oversize_messages_are_refused_before_the_write() {
    let (store, _, _) = common::dynamo_store_with(None, StoreOptions::default()).await;
    let msg = NewMessage {
        room: "r".into(),
        id: "big".into(),
        from: Sender {
            user: "u".into(),
            name: "u".into(),
        },
        data: json!("x".repeat(410 * 1024)),
        ts: NOW,
        expires_at: NOW + 3_600_000,
        change: None,
    };
    let clock = ManualClock::new(NOW);
    match sequencer::append(&*store, &clock, msg, NOW + 3_600_000).await {
        Err(StoreError::TooLarge { size, limit, .. }) => assert!(size > limit),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let options = sequencer::SettleOptions {
        hole_timeout: 60_000,
        history_ttl: 3_600_000,
    };
    let settled = sequencer::settle(&*store, "r", NOW, options).await.unwrap();
    assert_eq!(
        (settled.seq, store.seq_state("r").await.unwrap().top),
        (1, 1),
        "the seq it took was closed at once, not left as a hole"
    );
}

#[tokio::test]
async fn a_dead_server_gives_errors_not_hangs() {
    // A port that was just closed: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sdk = common::sdk().await;
    let client = roomcast_aws::dynamodb::client(&sdk, Some(&format!("http://{addr}")));
    let store = DynamoStore::new(client, "gone", StoreOptions::default());
    // The bound only catches a hang; the SDK's own timeouts end the call.
    let result = tokio::time::timeout(Duration::from_secs(60), store.get_connection("c1", NOW))
        .await
        .expect("the store call must end by itself");
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn presence_refresh_costs_one_query_and_batched_puts_at_most_every_half_idle_timeout() {
    let w = CostWorld::new(None).await;
    w.connect("c1", "alice").await;
    for i in 0..3 {
        w.call("c1", json!({"action": "join", "room": format!("r{i}")}))
            .await;
    }
    w.counter.take();
    // Within the refresh interval: just the touch.
    w.call("c1", json!({"action": "heartbeat"})).await;
    assert_eq!(w.counter.take(), counts(&[("UpdateItem", 1)]));
    // Half the idle timeout later: the touch, then one refresh.
    w.clock.advance_ms(300_000);
    w.call("c1", json!({"action": "heartbeat"})).await;
    // touch (one UpdateItem) + refresh (Query + 6 puts in one batch + UpdateItem refreshedAt)
    assert_eq!(
        w.counter.take(),
        counts(&[("BatchWriteItem", 1), ("Query", 1), ("UpdateItem", 2)])
    );
}

/// Frames of one connection handled by concurrent invocations (API Gateway
/// runs them in parallel): each is charged exactly once, none conflicts,
/// and exactly the burst is allowed. The charge is an increment in the
/// update's condition, not a read-then-compare-and-set.
#[tokio::test]
async fn concurrent_frames_of_one_connection_are_each_charged_without_conflicts() {
    let (store, ..) = common::dynamo_store_with(None, StoreOptions::default()).await;
    let c = ConnectionRecord::new("c1", &identity("alice"), NOW, NOW + 3_600_000);
    store.put_connection(&c).await.unwrap();
    let limit = roomcast_core::config::RateLimit {
        per_second: 10,
        burst: 5,
        abuse_strikes: 1_000,
    };
    let mut frames = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        frames.spawn(async move { store.touch("c1", NOW, &limit).await });
    }
    let (mut allowed, mut limited) = (0, 0);
    while let Some(r) = frames.join_next().await {
        match r.unwrap() {
            Ok(t) if t.verdict == roomcast_core::ratelimit::Verdict::Allowed => allowed += 1,
            Ok(_) => limited += 1,
            Err(e) => panic!("a frame was not charged: {e}"),
        }
    }
    assert_eq!((allowed, limited), (5, 11), "exactly the burst is allowed");
    let after = store.get_connection("c1", NOW).await.unwrap().unwrap();
    assert_eq!(
        after.rate.tat_us,
        NOW * 1000 + 5 * 100_000,
        "five intervals charged"
    );
    assert_eq!(after.rate.strikes, 11);
    // A burst frame and a limited frame each cost two conditional updates;
    // the usual frame (within the rate) one, asserted by the cost tests.
    let counter = CallCounter::new();
    let (store, ..) = common::dynamo_store_with(Some(&counter), StoreOptions::default()).await;
    store.put_connection(&c).await.unwrap();
    store.touch("c1", NOW, &limit).await.unwrap();
    counter.take();
    store.touch("c1", NOW, &limit).await.unwrap();
    assert_eq!(counter.take(), counts(&[("UpdateItem", 2)]), "burst");
    for _ in 0..3 {
        store.touch("c1", NOW, &limit).await.unwrap();
    }
    counter.take();
    let t = store.touch("c1", NOW, &limit).await.unwrap();
    assert!(matches!(
        t.verdict,
        roomcast_core::ratelimit::Verdict::Limited { strikes: 1 }
    ));
    assert_eq!(counter.take(), counts(&[("UpdateItem", 2)]), "limited");
    // Gone or expired: NotFound, as before.
    assert!(matches!(
        store.touch("nobody", NOW, &limit).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.touch("c1", NOW + 3_600_000, &limit).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A hot room: the second message to a room whose members did not change
/// reads the member set's version, not the members; a join in between
/// makes the next message read them again, and the joiner gets it.
#[tokio::test]
async fn a_second_message_to_an_unchanged_room_reuses_its_members_and_a_join_refreshes_them() {
    let mut w = CostWorld::new(None).await;
    w.dispatch = Some(MemoryDispatch::new());
    w.connect("sender", "alice").await;
    w.populate("room", 20).await;
    let send = |id: &str| json!({"action": "send", "room": "room", "id": id, "data": id});
    w.call("sender", send("m1")).await;
    w.counter.take();
    w.call("sender", send("m2")).await;
    let calls = w.counter.take();
    assert_eq!(
        calls.get("Query"),
        None,
        "members from the cache: {calls:?}"
    );
    for i in 0..20 {
        assert_eq!(w.gateway.take(&format!("m{i}")).len(), 2, "member {i}");
    }
    w.connect("late", "bob").await;
    w.call("late", json!({"action": "join", "room": "room"}))
        .await;
    w.counter.take();
    w.call("sender", send("m3")).await;
    assert_eq!(
        w.counter.take().get("Query"),
        Some(&1),
        "the join changed the room"
    );
    let got = w.gateway.take("late");
    assert!(
        got.iter().any(|f| f["type"] == "message" && f["seq"] == 3),
        "the joiner got the next message: {got:?}"
    );
}

#[tokio::test]
async fn with_events_on_a_send_costs_the_same_reads_and_writes_and_one_put_events() {
    let mut w = CostWorld::new(None).await;
    let events = w.with_events();
    w.connect("sender", "alice").await;
    w.populate("room", 50).await;
    w.outbox.flush().await;
    w.counter.take();
    events.take_batches();
    let ack = w
        .call(
            "sender",
            json!({"action": "send", "room": "room", "id": "m1", "data": "hi"}),
        )
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    w.outbox.flush().await;
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("GetItem", 1),
            ("Query", 1),
            ("TransactWriteItems", 1),
            ("UpdateItem", 3)
        ]),
        "as with events off (send_to_a_room_costs_one_query_page_per_page_of_members)"
    );
    let batches = events.take_batches();
    assert_eq!(batches.len(), 1, "one PutEvents: {batches:?}");
    assert_eq!(batches[0].len(), 1);
    assert_eq!(batches[0][0].detail_type(), "Message Stored");
}

#[tokio::test]
async fn with_events_on_a_disconnect_from_k_rooms_reads_each_rooms_devices_and_puts_once() {
    let mut w = CostWorld::new(None).await;
    let events = w.with_events();
    w.connect("c1", "alice").await;
    let k: usize = 4;
    for i in 0..k {
        w.call("c1", json!({"action": "join", "room": format!("room{i}")}))
            .await;
        w.clock.advance_ms(100);
    }
    w.outbox.flush().await;
    w.counter.take();
    events.take_batches();
    routes::disconnect(&w.ctx(), "c1").await.unwrap();
    w.outbox.flush().await;
    // As with events off, plus per room the user's devices there (one
    // Query): with nobody watching, events are the only reason to know
    // whether the user is still present.
    assert_eq!(
        w.counter.take(),
        counts(&[
            ("BatchWriteItem", 1),
            ("GetItem", k),
            ("Query", 1 + 2 * k),
            ("UpdateItem", k)
        ])
    );
    let batches = events.take_batches();
    assert_eq!(
        batches.len(),
        1,
        "the disconnect's events share one PutEvents"
    );
    let kinds: Vec<&str> = batches[0].iter().map(|e| e.detail_type()).collect();
    let mut expected = Vec::new();
    for _ in 0..k {
        expected.extend(["Room Left", "Presence Changed"]);
    }
    expected.push("Connection Closed");
    assert_eq!(kinds, expected);
}

/// What each server API operation costs (docs/server-api.md), on DynamoDB.
#[tokio::test]
async fn server_api_operations_cost_bounded_reads_and_writes() {
    use roomcast_core::routes::server::{self, Kick};
    let w = CostWorld::new(Some(40)).await;
    w.populate("lobby", 100).await;
    // roomInfo: the member count (GetItem), one roster Query of at most
    // PresenceMax + 1 after the member set's version (GetItem), and the
    // room's counter to settle (GetItem): O(cap), not O(members).
    let info = server::room_info(&w.ctx(), "lobby").await.unwrap();
    assert_eq!(info.member_count, 100);
    assert_eq!(w.counter.take(), counts(&[("GetItem", 3), ("Query", 1)]));
    // members: one Query per page (the first after the member set's
    // version, as every first page is read: GetItem).
    let page = server::members(&w.ctx(), "lobby", None, Some(25))
        .await
        .unwrap();
    assert_eq!(page.members.len(), 25);
    assert_eq!(w.counter.take(), counts(&[("GetItem", 1), ("Query", 1)]));
    let next = server::members(&w.ctx(), "lobby", page.cursor.as_deref(), Some(25))
        .await
        .unwrap();
    assert_eq!(next.members.len(), 25);
    assert_eq!(w.counter.take(), counts(&[("Query", 1)]));
    // history: one Query.
    server::history(&w.ctx(), "lobby", None, None)
        .await
        .unwrap();
    assert_eq!(w.counter.take(), counts(&[("Query", 1)]));
    // disconnect: the user's connections (one Query); the closes go to the
    // gateway, and each connection's $disconnect cleans up after.
    w.connect("c1", "alice").await;
    w.connect("c2", "alice").await;
    w.counter.take();
    let kick = Kick::new(Some(4001), None).unwrap();
    let done = server::disconnect_user(&w.ctx(), "alice", &kick, false)
        .await
        .unwrap();
    assert_eq!(done.disconnected, 2);
    assert_eq!(w.counter.take(), counts(&[("Query", 1)]));
    // revoke: the revocation (PutItem), the user's connections (Query),
    // then each connection removed as a disconnect removes it (a Query of
    // its partition and one batch of deletes, no rooms here).
    let until = NOW + 3_600_000;
    let done = server::revoke_user(&w.ctx(), "alice", until, &kick)
        .await
        .unwrap();
    assert_eq!(done.disconnected, 2);
    assert_eq!(
        w.counter.take(),
        counts(&[("BatchWriteItem", 2), ("PutItem", 1), ("Query", 3)])
    );
    // Revoking a user nobody has seen stores the revocation all the same.
    let ghost = server::revoke_user(&w.ctx(), "ghost", until, &kick)
        .await
        .unwrap();
    assert_eq!(ghost.disconnected, 0);
    assert_eq!(
        w.store.revoked_until("ghost", NOW).await.unwrap(),
        Some(until)
    );
}
