//! Conformance cases for changes (`Store::find_message`,
//! `Store::apply_change`): the latest version by the later seq, deletes
//! that erase every version and are final, lookups that find messages
//! only.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{HOUR, NOW, append, message, unique};
use crate::protocol::{Change, ChangeKind, Message};
use crate::store::{Appended, ChangeApplied, NewMessage, Store};

/// A change by `user` (id `id`) of `target`, as the route appends it.
fn change(target: &Message, user: &str, id: &str, kind: ChangeKind, data: Value) -> NewMessage {
    let mut m = message(&target.room, user, id);
    m.data = data;
    m.change = Some(Change {
        kind,
        message: target.id.clone(),
        author: target.from.user.clone(),
        seq: target.seq,
        replaces: None,
    });
    m
}

async fn stored(store: &dyn Store, msg: NewMessage) -> Message {
    match append(store, msg).await {
        Appended::New { message, .. } => message,
        other => panic!("expected a new message, got {other:?}"),
    }
}

/// The message at `seq` as history returns it.
async fn at(store: &dyn Store, room: &str, seq: u64) -> Message {
    let page = store.history_after(room, seq - 1, 1, NOW).await.unwrap();
    let m = page.messages.into_iter().next().expect("a message at seq");
    assert_eq!(m.seq, seq);
    m
}

/// Lookups find live messages by author and id, exactly, never changes.
pub async fn find_message_finds_live_messages_only(store: Arc<dyn Store>) {
    let room = unique("room");
    let m1 = stored(&*store, message(&room, "alice", "m1")).await;
    let found = store.find_message(&room, "alice", "m1", NOW).await.unwrap();
    assert_eq!(found.as_ref().map(|m| m.seq), Some(m1.seq));
    // Ids are per sender, and compared exactly.
    assert_eq!(
        store.find_message(&room, "bob", "m1", NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_message(&room, "Alice", "m1", NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_message(&room, "alice", "m2", NOW).await.unwrap(),
        None
    );
    // A change is not a message a change can name.
    let e = stored(
        &*store,
        change(&m1, "alice", "e1", ChangeKind::Edit, json!(1)),
    )
    .await;
    assert_eq!(
        store.find_message(&room, "alice", "e1", NOW).await.unwrap(),
        None
    );
    assert!(e.change.is_some());
    // Expired history is gone.
    let later = NOW + 8 * 24 * HOUR;
    assert_eq!(
        store
            .find_message(&room, "alice", "m1", later)
            .await
            .unwrap(),
        None
    );
}

/// The latest version is the edit with the later seq, in whatever order
/// edits are applied; every version stays in the stream.
pub async fn edits_make_the_latest_version_and_the_later_seq_wins(store: Arc<dyn Store>) {
    let room = unique("room");
    let m1 = stored(&*store, message(&room, "alice", "m1")).await;
    let e1 = stored(
        &*store,
        change(&m1, "alice", "e1", ChangeKind::Edit, json!("one")),
    )
    .await;
    let e2 = stored(
        &*store,
        change(&m1, "mod", "e2", ChangeKind::Edit, json!("two")),
    )
    .await;
    // Applied out of order: the later seq wins either way.
    let applied = store.apply_change(&room, m1.seq, &e2).await.unwrap();
    assert_eq!(applied, ChangeApplied::Applied);
    let applied = store.apply_change(&room, m1.seq, &e1).await.unwrap();
    assert_eq!(applied, ChangeApplied::Superseded);
    let latest = at(&*store, &room, m1.seq).await;
    assert_eq!(latest.data, json!("two"));
    let revision = latest.revision.expect("a revision");
    assert_eq!((revision.seq, revision.by.user.as_str()), (e2.seq, "mod"));
    assert!(!revision.deleted);
    // Both versions stay in the stream, in order, with their data.
    assert_eq!(at(&*store, &room, e1.seq).await.data, json!("one"));
    assert_eq!(at(&*store, &room, e2.seq).await.data, json!("two"));
    let found = store.find_message(&room, "alice", "m1", NOW).await.unwrap();
    assert_eq!(found.map(|m| m.data), Some(json!("two")));
}

/// A delete erases the message's data and every edit's, an edit applied
/// after it erases its own, and a tombstone (who, when) stays.
pub async fn a_delete_erases_every_version_and_is_final(store: Arc<dyn Store>) {
    let room = unique("room");
    let m1 = stored(&*store, message(&room, "alice", "m1")).await;
    let e1 = stored(
        &*store,
        change(&m1, "alice", "e1", ChangeKind::Edit, json!("secret")),
    )
    .await;
    assert_eq!(
        store.apply_change(&room, m1.seq, &e1).await.unwrap(),
        ChangeApplied::Applied
    );
    let d1 = stored(
        &*store,
        change(&m1, "alice", "d1", ChangeKind::Delete, Value::Null),
    )
    .await;
    // An edit that raced the delete and is applied after it.
    let e2 = stored(
        &*store,
        change(&m1, "alice", "e2", ChangeKind::Edit, json!("late")),
    )
    .await;
    assert_eq!(
        store.apply_change(&room, m1.seq, &d1).await.unwrap(),
        ChangeApplied::Applied
    );
    assert_eq!(
        store.apply_change(&room, m1.seq, &e2).await.unwrap(),
        ChangeApplied::Deleted
    );
    // Deleting again changes nothing.
    assert_eq!(
        store.apply_change(&room, m1.seq, &d1).await.unwrap(),
        ChangeApplied::Superseded
    );
    let tombstone = at(&*store, &room, m1.seq).await;
    assert_eq!(tombstone.data, Value::Null);
    let revision = tombstone.revision.expect("a tombstone");
    assert!(revision.deleted);
    assert_eq!((revision.seq, revision.by.user.as_str()), (d1.seq, "alice"));
    // No stored item keeps the message's data.
    for seq in [e1.seq, e2.seq] {
        assert_eq!(at(&*store, &room, seq).await.data, Value::Null, "seq {seq}");
    }
    let page = store.history_before(&room, None, 10, NOW).await.unwrap();
    let text = serde_json::to_string(&page.messages).unwrap();
    for secret in ["secret", "late", "message m1"] {
        assert!(!text.contains(secret), "{secret} still stored: {text}");
    }
}

/// Edits applied at once by several writers: the latest seq is the
/// message's version, and a delete erases all of them.
pub async fn concurrent_edits_keep_every_version_and_the_latest_seq(store: Arc<dyn Store>) {
    let room = unique("room");
    let m1 = stored(&*store, message(&room, "alice", "m1")).await;
    let edits = (0..8).map(|i| {
        let (store, m1) = (store.clone(), m1.clone());
        async move {
            let user = if i % 2 == 0 { "alice" } else { "mod" };
            let e = stored(
                &*store,
                change(&m1, user, &format!("e{i}"), ChangeKind::Edit, json!(i)),
            )
            .await;
            store.apply_change(&m1.room, m1.seq, &e).await.unwrap();
            e
        }
    });
    let edits = futures::future::join_all(edits).await;
    let last = edits.iter().max_by_key(|e| e.seq).unwrap();
    let latest = at(&*store, &room, m1.seq).await;
    assert_eq!(latest.data, last.data);
    assert_eq!(latest.revision.map(|r| r.seq), Some(last.seq));
    // A delete then erases every one of them.
    let d = stored(
        &*store,
        change(&m1, "mod", "d", ChangeKind::Delete, Value::Null),
    )
    .await;
    store.apply_change(&room, m1.seq, &d).await.unwrap();
    for e in &edits {
        assert_eq!(at(&*store, &room, e.seq).await.data, Value::Null);
    }
}
