//! What the routes tell the team's backend through the events port: which
//! detail-types, with which fields, in how many batches.

use super::*;
use crate::events::Outbox;

/// The detail-types of the events since the last call, in order.
fn kinds(w: &World) -> Vec<&'static str> {
    w.events.take().into_iter().map(|(k, _)| k).collect()
}

fn only(w: &World, kind: &str) -> Vec<Value> {
    w.events
        .take()
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, d)| d)
        .collect()
}

#[tokio::test]
async fn with_events_off_routes_record_nothing() {
    // The outbox is off: even a sink handed to nobody stays empty, and no
    // event is built.
    let w = World::new();
    w.connect("a1", "alice").await;
    w.join("a1", "r").await;
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": 1}),
    )
    .await;
    assert!(w.events.take_batches().is_empty());
}

#[tokio::test]
async fn connect_records_connection_opened() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    assert_eq!(
        w.events.take(),
        vec![(
            "Connection Opened",
            json!({"version": 1, "connectionId": "a1", "user": "alice", "name": "alice!", "at": T0})
        )]
    );
}

#[tokio::test]
async fn the_first_device_joining_is_a_join_and_a_presence_change_the_second_only_a_join() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.connect("a2", "alice").await;
    w.events.take();
    w.join("a1", "r").await;
    assert_eq!(
        w.events.take(),
        vec![
            (
                "Room Joined",
                json!({"version": 1, "room": "r", "connectionId": "a1", "user": "alice", "at": T0})
            ),
            (
                "Presence Changed",
                json!({"version": 1, "room": "r", "user": "alice", "name": "alice!", "event": "joined", "at": T0})
            ),
        ]
    );
    w.join("a2", "r").await;
    assert_eq!(kinds(&w), vec!["Room Joined"]);
    // A re-join of a live membership is not a new join.
    w.join("a2", "r").await;
    assert_eq!(kinds(&w), Vec::<&str>::new());
}

#[tokio::test]
async fn leaving_records_the_leave_and_presence_only_for_the_last_device() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.connect("a2", "alice").await;
    w.join("a1", "r").await;
    w.join("a2", "r").await;
    w.events.take();
    w.reply("a1", json!({"action": "leave", "room": "r"})).await;
    assert_eq!(
        w.events.take(),
        vec![(
            "Room Left",
            json!({"version": 1, "room": "r", "connectionId": "a1", "user": "alice", "reason": "leave", "at": T0})
        )]
    );
    w.reply("a2", json!({"action": "leave", "room": "r"})).await;
    assert_eq!(kinds(&w), vec!["Room Left", "Presence Changed"]);
}

#[tokio::test]
async fn a_disconnect_is_one_batch_with_each_room_left_and_the_close() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.join("a1", "r1").await;
    w.join("a1", "r2").await;
    w.events.take();
    let closed = Closed {
        code: Some(1001),
        reason: Some("Going away".into()),
    };
    disconnect_closed(&w.ctx(), "a1", closed).await.unwrap();
    w.outbox.flush().await;
    let batches = w.events.take_batches();
    assert_eq!(batches.len(), 1, "one batch: {batches:?}");
    let events: Vec<(&str, Value)> = batches[0]
        .iter()
        .map(|e| (e.detail_type(), e.detail()))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            "Room Left",
            "Presence Changed",
            "Room Left",
            "Presence Changed",
            "Connection Closed"
        ]
    );
    assert_eq!(events[0].1["reason"], "disconnect");
    assert_eq!(
        events[4].1,
        json!({
            "version": 1, "connectionId": "a1", "user": "alice", "closeCode": 1001,
            "reason": "Going away", "rooms": ["r1", "r2"], "connectedAt": T0, "at": T0
        })
    );
}

#[tokio::test]
async fn a_connection_found_gone_is_closed_with_reason_gone() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.connect("g1", "gina").await;
    w.join("a1", "r").await;
    w.join("g1", "r").await;
    w.events.take();
    w.gateway.mark_gone("g1");
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": 1}),
    )
    .await;
    let closed = only(&w, "Connection Closed");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["connectionId"], "g1");
    assert_eq!(closed[0]["reason"], "gone");
    assert!(closed[0].get("closeCode").is_none());
}

#[tokio::test]
async fn a_stored_message_carries_room_seq_id_sender_and_data() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.join("a1", "r").await;
    w.events.take();
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": {"text": "hi"}}),
    )
    .await;
    let epoch = w.store.seq_state("r").await.unwrap().epoch;
    assert_eq!(
        w.events.take(),
        vec![(
            "Message Stored",
            json!({
                "version": 1, "room": "r", "seq": 1, "epoch": epoch, "id": "m1",
                "from": {"user": "alice", "name": "alice!"}, "origin": "client",
                "connectionId": "a1", "data": {"text": "hi"}, "ts": T0
            })
        )]
    );
    // A retry of the same id is not stored again, so not told again.
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": {"text": "hi"}}),
    )
    .await;
    assert!(w.events.take_batches().is_empty());
}

#[tokio::test]
async fn ephemeral_sends_are_not_events() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.join("a1", "r").await;
    w.events.take();
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "c1", "data": 1, "ephemeral": true}),
    )
    .await;
    assert!(w.events.take_batches().is_empty());
}

#[tokio::test]
async fn a_stack_that_leaves_data_out_says_so() {
    let mut w = World::new();
    w.outbox = Outbox::new(Some(w.events.clone()), false);
    w.connect("a1", "alice").await;
    w.join("a1", "r").await;
    w.events.take();
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": "secret"}),
    )
    .await;
    let stored = only(&w, "Message Stored");
    assert!(stored[0].get("data").is_none(), "{stored:?}");
    assert_eq!(stored[0]["dataOmitted"], "configured");
}

#[tokio::test]
async fn a_direct_is_told_with_its_delivery_once() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.connect("b1", "bob").await;
    w.connect("b2", "bob").await;
    w.events.take();
    let direct = json!({"action": "direct", "to": "bob", "id": "d1", "data": {"x": 1}});
    w.reply("a1", direct.clone()).await;
    assert_eq!(
        w.events.take(),
        vec![(
            "Direct Sent",
            json!({
                "version": 1, "to": "bob", "from": {"user": "alice", "name": "alice!"},
                "id": "d1", "connectionId": "a1", "delivered": 2, "data": {"x": 1}, "ts": T0
            })
        )]
    );
    w.reply("a1", direct).await;
    assert!(w.events.take_batches().is_empty(), "a retry is not told");
}

#[tokio::test]
async fn a_backend_publish_to_a_room_is_stored_and_published() {
    let w = World::new().with_events();
    w.connect("b1", "bob").await;
    w.join("b1", "news").await;
    w.events.take();
    let server = Sender {
        user: "backend".into(),
        name: "Backend".into(),
    };
    let ctx = w.ctx();
    let publish_once = || {
        publish(
            &ctx,
            PublishTarget::Room("news".into()),
            server.clone(),
            Some("p1"),
            json!({"n": 1}),
        )
    };
    publish_once().await.unwrap();
    w.outbox.flush().await;
    let events = w.events.take();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "Message Stored");
    assert_eq!(events[0].1["origin"], "server");
    assert!(events[0].1.get("connectionId").is_none());
    assert_eq!(
        events[1],
        (
            "Message Published",
            json!({
                "version": 1, "room": "news", "seq": 1, "id": "p1",
                "from": {"user": "backend", "name": "Backend"}, "delivered": 1,
                "data": {"n": 1}, "at": T0
            })
        )
    );
    publish_once().await.unwrap();
    w.outbox.flush().await;
    assert!(
        w.events.take_batches().is_empty(),
        "a retried publish is not told"
    );
}

#[tokio::test]
async fn a_backend_publish_to_a_user_is_published_not_stored() {
    let w = World::new().with_events();
    w.connect("b1", "bob").await;
    w.events.take();
    let server = Sender {
        user: "backend".into(),
        name: "Backend".into(),
    };
    publish(
        &w.ctx(),
        PublishTarget::User("bob".into()),
        server,
        Some("u1"),
        json!(2),
    )
    .await
    .unwrap();
    w.outbox.flush().await;
    let events = w.events.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "Message Published");
    assert_eq!(events[0].1["user"], "bob");
    assert!(events[0].1.get("seq").is_none());
}

#[tokio::test]
async fn refusals_worth_alerting_on_are_told_and_client_mistakes_are_not() {
    let w = World::new().with_events();
    let id = w.identity("eve", rights(&[("public.*", &[Right::Join])]));
    w.connect_as("e1", &id).await;
    w.events.take();
    w.reply(
        "e1",
        json!({"action": "join", "room": "private.x", "ref": "j"}),
    )
    .await;
    let rejected = only(&w, "Request Rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["code"], "forbidden");
    assert_eq!(rejected[0]["action"], "join");
    assert_eq!(rejected[0]["connectionId"], "e1");
    // A malformed frame is the client's bug: logged, not an event.
    w.raw("e1", "{not json").await;
    assert!(w.events.take_batches().is_empty());
}

#[tokio::test]
async fn rooms_past_the_presence_cap_have_joins_but_no_presence_changes() {
    let mut w = World::new().with_events();
    w.config.presence_max = 1;
    for (c, u) in [("a1", "alice"), ("b1", "bob"), ("c1", "carol")] {
        w.connect(c, u).await;
    }
    w.join("a1", "big").await;
    w.events.take();
    w.join("b1", "big").await;
    assert_eq!(kinds(&w), vec!["Room Joined"]);
    w.join("c1", "big").await;
    w.events.take();
    // Still past the cap after the leave.
    w.reply("b1", json!({"action": "leave", "room": "big"}))
        .await;
    assert_eq!(kinds(&w), vec!["Room Left"]);
}

/// A sink that holds every `put` until released.
#[derive(Default)]
struct Held {
    release: tokio::sync::Notify,
    put: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl crate::events::Events for Held {
    async fn put(
        &self,
        _events: Vec<crate::events::Event>,
        _deadline: Option<tokio::time::Instant>,
    ) {
        self.put.store(true, std::sync::atomic::Ordering::SeqCst);
        self.release.notified().await;
    }
}

#[tokio::test]
async fn a_slow_bus_delays_neither_the_ack_nor_the_fan_out() {
    let mut w = World::new();
    w.connect("a1", "alice").await;
    w.connect("b1", "bob").await;
    w.join("a1", "r").await;
    w.join("b1", "r").await;
    let held = std::sync::Arc::new(Held::default());
    w.outbox = Outbox::new(Some(held.clone()), true);
    let w = &w;
    let ctx = w.ctx();
    let body = json!({"action": "send", "room": "r", "id": "m1", "data": 1}).to_string();
    let send = message(&ctx, None, inbound("a1", None, &body, false));
    let watch = async {
        // The put has started and is held: the ack and the message are
        // already out.
        while !held.put.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        let acked = w.gateway.texts("a1").iter().any(|t| t.contains("\"ack\""));
        // The fan-out runs beside the held put and finishes without it.
        let has_message = || {
            w.gateway
                .texts("b1")
                .iter()
                .any(|t| t.contains("\"message\""))
        };
        let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !has_message() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .is_ok();
        held.release.notify_one();
        (acked, delivered)
    };
    let (reply, (acked, delivered)) = futures::join!(send, watch);
    assert!(acked, "the ack went out before the bus answered");
    assert!(delivered, "the fan-out finished while the put was held");
    assert!(reply.is_none(), "the ack was posted early: {reply:?}");
}

/// An edit is `Message Updated` with its new data, a delete `Message
/// Deleted` without any, each naming the message it changed; a repeated
/// change is not told again.
#[tokio::test]
async fn changes_are_updated_and_deleted_events_naming_their_message() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.join("a1", "r").await;
    w.reply(
        "a1",
        json!({"action": "send", "room": "r", "id": "m1", "data": "hi"}),
    )
    .await;
    w.events.take();
    let edit = json!({"action": "edit", "room": "r", "id": "e1", "message": "m1", "data": "hi!"});
    w.reply("a1", edit.clone()).await;
    let epoch = w.store.seq_state("r").await.unwrap().epoch;
    assert_eq!(
        w.events.take(),
        vec![(
            "Message Updated",
            json!({
                "version": 1, "room": "r", "seq": 2, "epoch": epoch, "id": "e1",
                "message": "m1", "author": "alice", "messageSeq": 1,
                "from": {"user": "alice", "name": "alice!"}, "origin": "client",
                "connectionId": "a1", "data": "hi!", "ts": T0
            })
        )]
    );
    w.reply("a1", edit).await;
    assert!(
        w.events.take_batches().is_empty(),
        "a repeat is not told again"
    );
    w.reply(
        "a1",
        json!({"action": "delete", "room": "r", "id": "d1", "message": "m1"}),
    )
    .await;
    let deleted = only(&w, "Message Deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["messageSeq"], 1);
    assert!(deleted[0].get("data").is_none(), "{}", deleted[0]);
}
