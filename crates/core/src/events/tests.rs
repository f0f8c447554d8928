use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::protocol::Sender;

fn stored(data: Option<Value>) -> Event {
    Event::MessageStored(MessageStored {
        room: "r".into(),
        seq: 7,
        epoch: String::new(),
        id: "m".into(),
        from: Sender {
            user: "u".into(),
            name: "U".into(),
        },
        origin: Origin::Client,
        connection_id: Some("c".into()),
        data,
        data_omitted: None,
        ts: 1,
    })
}

#[tokio::test]
async fn an_outbox_delivers_everything_recorded_in_one_batch_and_then_nothing() {
    let sink = Arc::new(RecordedEvents::default());
    let outbox = Outbox::new(Some(sink.clone()), true);
    outbox.record(|| stored(Some(json!(1))));
    outbox.record(|| stored(Some(json!(2))));
    outbox.flush().await;
    outbox.flush().await;
    let batches = sink.take_batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].len(), 2);
}

#[tokio::test]
async fn an_outbox_that_is_off_never_builds_an_event() {
    let outbox = Outbox::off();
    outbox.record(|| unreachable!("events are off: nothing is built"));
    outbox.flush().await;
    assert!(!outbox.is_on());
}

#[test]
fn dropping_data_says_why_and_leaves_events_without_data_alone() {
    let mut e = stored(Some(json!({"big": "x"})));
    e.without_data(DataOmitted::TooLarge);
    let d = e.detail();
    assert!(d.get("data").is_none());
    assert_eq!(d["dataOmitted"], "tooLarge");
    // No data to drop: no flag either.
    let mut none = stored(None);
    none.without_data(DataOmitted::TooLarge);
    assert!(none.detail().get("dataOmitted").is_none());
}

#[test]
fn every_detail_carries_the_schema_version() {
    let e = stored(Some(json!(1)));
    assert_eq!(e.detail()["version"], SCHEMA_VERSION);
}

#[test]
fn docs_events_md_documents_every_detail_type() {
    let docs = include_str!("../../../../docs/events.md");
    for kind in DETAIL_TYPES {
        assert!(
            docs.contains(&format!("### {kind}\n")),
            "docs/events.md has no section for {kind}"
        );
    }
    assert_eq!(stored(None).detail_type(), "Message Stored");
    assert!(DETAIL_TYPES.contains(&stored(None).detail_type()));
}
