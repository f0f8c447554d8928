//! The `Store` conformance suite: the executable specification of the trait.
//!
//! Every adapter runs the same list through [`store_conformance_tests!`]:
//!
//! ```ignore
//! roomcast_core::store_conformance_tests!(async { std::sync::Arc::new(MemoryStore::new()) });
//! ```
//!
//! Each case gets a fresh store from the factory expression, and also uses
//! names unique to the run, so adapters may share one backing table.
// This module is a test suite shipped as library code so that other crates'
// tests can run it; assertions are its purpose.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::sequencer::{self, SettleOptions};
use super::{
    Appended, Committed, ConnectionRecord, JoinOutcome, Membership, NewMessage, Slot, Store,
    StoreError,
};
use crate::auth::{Identity, Right, RoomRights};
use crate::clock::{ManualClock, Millis};
use crate::config::RateLimit;
use crate::protocol::Message;
use crate::protocol::Sender;
use crate::ratelimit::Verdict;

/// Generates one `#[tokio::test]` per conformance case for a store factory.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            connection_round_trip,
            expired_connections_are_invisible,
            remove_connection_cleans_memberships_and_index,
            remove_connection_in_hundreds_of_rooms,
            touch_applies_the_rate_limit,
            touch_is_atomic_under_concurrency,
            touch_on_missing_connection_is_not_found,
            update_identity_replaces_rights,
            join_is_idempotent_and_members_are_live_only,
            leave_returns_the_membership,
            refresh_extends_memberships,
            memberships_of_lists_one_connections_rooms_with_token_expiry,
            members_of_a_large_room_are_all_listed,
            member_pages_cover_the_room_once_in_order,
            member_count_follows_join_leave_and_disconnect,
            racing_joins_each_see_their_own_count,
            watchers_are_the_live_members_with_presence,
            watchers_follow_leave_rejoin_refresh_and_disconnect,
            membership_is_one_connections_live_membership,
            user_memberships_are_all_devices_of_one_user,
            append_assigns_gap_free_seqs,
            a_rooms_epoch_is_made_with_its_stream_and_kept,
            concurrent_first_sends_share_one_epoch,
            a_dead_writers_hole_is_closed_after_the_timeout_and_a_late_writer_takes_a_new_seq,
            a_commit_whose_answer_was_lost_is_reported_stored,
            tombstones_racing_late_writers_each_slot_has_one_winner,
            append_is_idempotent_per_sender_and_room,
            concurrent_appends_get_distinct_gap_free_seqs,
            readers_are_never_promised_a_seq_that_is_not_settled,
            concurrent_retries_of_one_send_store_it_once,
            history_pages_newest_first,
            history_after_resumes_in_order,
            expired_history_is_skipped,
            direct_markers_dedupe_until_expiry,
            revocations_hold_until_their_time_and_are_replaced,
            find_message_finds_live_messages_only,
            edits_make_the_latest_version_and_the_later_seq_wins,
            a_delete_erases_every_version_and_is_final,
            concurrent_edits_keep_every_version_and_the_latest_seq,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store: ::std::sync::Arc<dyn $crate::store::Store> = $make.await;
                $crate::store::conformance::$case(store).await;
            }
        )*
    };
}

mod changes;
pub use changes::*;

/// A fixed "now" far from zero, so that "expired" is unambiguous.
pub const NOW: Millis = 1_900_000_000_000;
const HOUR: Millis = 3_600_000;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn identity(user: &str) -> Identity {
    Identity {
        user: user.to_owned(),
        name: format!("{user} name"),
        exp: NOW / 1000 + 3600,
        rooms: RoomRights::all(),
        direct: true,
    }
}

fn connection(id: &str, user: &str) -> ConnectionRecord {
    ConnectionRecord::new(id, &identity(user), NOW, NOW + 2 * HOUR)
}

fn membership(room: &str, c: &ConnectionRecord, expires_at: Millis) -> Membership {
    Membership {
        room: room.to_owned(),
        connection_id: c.connection_id.clone(),
        user: c.user.clone(),
        name: c.name.clone(),
        presence: true,
        joined_at: NOW,
        expires_at,
        token_exp: c.token_exp,
    }
}

fn message(room: &str, user: &str, id: &str) -> NewMessage {
    NewMessage {
        room: room.to_owned(),
        id: id.to_owned(),
        from: Sender {
            user: user.to_owned(),
            name: format!("{user} name"),
        },
        data: json!({"text": format!("message {id}"), "n": [1, 2.5, null, true]}),
        ts: NOW,
        expires_at: NOW + 7 * 24 * HOUR,
        change: None,
    }
}

/// The hole timeout the suite settles with.
const HOLE_TIMEOUT: Millis = 5_000;

fn settle_options() -> SettleOptions {
    SettleOptions {
        hole_timeout: HOLE_TIMEOUT,
        history_ttl: 7 * 24 * HOUR,
    }
}

async fn append(store: &dyn Store, msg: NewMessage) -> Appended {
    sequencer::append(store, &ManualClock::new(NOW), msg, NOW + 24 * HOUR)
        .await
        .unwrap()
}

async fn new_seq(store: &dyn Store, msg: NewMessage) -> u64 {
    match append(store, msg).await {
        Appended::New { message, .. } => message.seq,
        Appended::Duplicate { seq } => panic!("unexpected duplicate of seq {seq}"),
    }
}

async fn settle(store: &dyn Store, room: &str, now: Millis) -> sequencer::Settled {
    sequencer::settle(store, room, now, settle_options())
        .await
        .unwrap()
}

/// `msg` as stored at `seq`.
fn at_seq(msg: &NewMessage, seq: u64) -> Message {
    Message {
        room: msg.room.clone(),
        seq,
        epoch: String::new(),
        id: msg.id.clone(),
        from: msg.from.clone(),
        data: msg.data.clone(),
        ts: msg.ts,
        change: msg.change.clone().map(Box::new),
        revision: None,
    }
}

/// Put, get, and the user→connection index.
pub async fn connection_round_trip(store: Arc<dyn Store>) {
    let user = unique("u");
    let (a, b) = (
        connection(&unique("c"), &user),
        connection(&unique("c"), &user),
    );
    store.put_connection(&a).await.unwrap();
    store.put_connection(&b).await.unwrap();
    assert_eq!(
        store.get_connection(&a.connection_id, NOW).await.unwrap(),
        Some(a.clone())
    );
    let mut devices = store.user_connections(&user, NOW).await.unwrap();
    devices.sort();
    let mut want = vec![a.connection_id.clone(), b.connection_id.clone()];
    want.sort();
    assert_eq!(devices, want);
    assert_eq!(
        store.get_connection(&unique("missing"), NOW).await.unwrap(),
        None
    );
    assert!(
        store
            .user_connections(&unique("nobody"), NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Reads ignore items past `expires_at`, before any backend cleanup.
pub async fn expired_connections_are_invisible(store: Arc<dyn Store>) {
    let user = unique("u");
    let mut c = connection(&unique("c"), &user);
    c.expires_at = NOW - 1;
    store.put_connection(&c).await.unwrap();
    assert_eq!(
        store.get_connection(&c.connection_id, NOW).await.unwrap(),
        None
    );
    assert!(store.user_connections(&user, NOW).await.unwrap().is_empty());
    let err = store
        .touch(&c.connection_id, NOW, &RateLimit::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Removing a connection removes its index entry and every membership.
pub async fn remove_connection_cleans_memberships_and_index(store: Arc<dyn Store>) {
    let user = unique("u");
    let c = connection(&unique("c"), &user);
    let other = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    store.put_connection(&other).await.unwrap();
    let rooms: Vec<String> = (0..3).map(|i| unique(&format!("room{i}"))).collect();
    for room in &rooms {
        store.join(&membership(room, &c, NOW + HOUR)).await.unwrap();
        store
            .join(&membership(room, &other, NOW + HOUR))
            .await
            .unwrap();
    }
    let removed = store
        .remove_connection(&c.connection_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.connection, c);
    let mut got: Vec<String> = removed.memberships.iter().map(|m| m.room.clone()).collect();
    got.sort();
    let mut want = rooms.clone();
    want.sort();
    assert_eq!(got, want);
    for room in &rooms {
        let members = store.members(room, NOW).await.unwrap();
        assert_eq!(
            members.len(),
            1,
            "only the other connection remains in {room}"
        );
        assert_eq!(members[0].connection_id, other.connection_id);
    }
    assert!(store.user_connections(&user, NOW).await.unwrap().is_empty());
    assert_eq!(
        store.get_connection(&c.connection_id, NOW).await.unwrap(),
        None
    );
    assert!(
        store
            .remove_connection(&c.connection_id)
            .await
            .unwrap()
            .is_none()
    );
}

/// Cleanup stays correct for a connection in hundreds of rooms.
pub async fn remove_connection_in_hundreds_of_rooms(store: Arc<dyn Store>) {
    let c = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    let prefix = unique("many");
    for i in 0..260 {
        store
            .join(&membership(&format!("{prefix}-{i}"), &c, NOW + HOUR))
            .await
            .unwrap();
    }
    let removed = store
        .remove_connection(&c.connection_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.memberships.len(), 260);
    for i in [0, 99, 100, 259] {
        assert!(
            store
                .members(&format!("{prefix}-{i}"), NOW)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// `touch` charges the GCRA limiter and persists its state.
pub async fn touch_applies_the_rate_limit(store: Arc<dyn Store>) {
    let c = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    let limit = RateLimit {
        per_second: 10,
        burst: 3,
        abuse_strikes: 5,
    };
    for _ in 0..3 {
        let t = store.touch(&c.connection_id, NOW, &limit).await.unwrap();
        assert_eq!(t.verdict, Verdict::Allowed);
        assert_eq!(t.connection.user, c.user);
    }
    let t = store.touch(&c.connection_id, NOW, &limit).await.unwrap();
    assert_eq!(t.verdict, Verdict::Limited { strikes: 1 });
    let t = store.touch(&c.connection_id, NOW, &limit).await.unwrap();
    assert_eq!(t.verdict, Verdict::Limited { strikes: 2 });
    let t = store
        .touch(&c.connection_id, NOW + 100, &limit)
        .await
        .unwrap();
    assert_eq!(t.verdict, Verdict::Allowed);
}

/// Concurrent touches never let more through than the burst.
pub async fn touch_is_atomic_under_concurrency(store: Arc<dyn Store>) {
    let c = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    let limit = RateLimit {
        per_second: 1,
        burst: 5,
        abuse_strikes: 1000,
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let id = c.connection_id.clone();
        tasks.push(tokio::spawn(
            async move { store.touch(&id, NOW, &limit).await },
        ));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().verdict == Verdict::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "exactly the burst gets through");
}

/// Touching an unknown connection is `NotFound`, not a crash or a create.
pub async fn touch_on_missing_connection_is_not_found(store: Arc<dyn Store>) {
    let id = unique("ghost");
    let err = store
        .touch(&id, NOW, &RateLimit::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get_connection(&id, NOW).await.unwrap(), None);
}

/// `auth` refreshes expiry and rights in place.
pub async fn update_identity_replaces_rights(store: Arc<dyn Store>) {
    let c = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    let mut fresh = identity(&c.user);
    fresh.exp += 3600;
    fresh.name = "Renamed".into();
    fresh.rooms = RoomRights::new(BTreeMap::from([("only.*".to_owned(), vec![Right::Join])]));
    fresh.direct = false;
    store
        .update_identity(&c.connection_id, &fresh)
        .await
        .unwrap();
    let got = store
        .get_connection(&c.connection_id, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.token_exp, fresh.exp);
    assert_eq!(got.name, "Renamed");
    assert_eq!(got.rooms, fresh.rooms);
    assert!(!got.direct);
    let err = store
        .update_identity(&unique("ghost"), &fresh)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Joining twice is one membership; expired memberships are not listed.
pub async fn join_is_idempotent_and_members_are_live_only(store: Arc<dyn Store>) {
    let room = unique("room");
    let (a, b) = (
        connection(&unique("c"), &unique("u")),
        connection(&unique("c"), &unique("u")),
    );
    assert_eq!(
        store
            .join(&membership(&room, &a, NOW + HOUR))
            .await
            .unwrap(),
        JoinOutcome {
            is_new: true,
            count: Some(1)
        }
    );
    assert_eq!(
        store
            .join(&membership(&room, &a, NOW + HOUR))
            .await
            .unwrap(),
        JoinOutcome {
            is_new: false,
            count: None
        },
        "a refresh changes no count"
    );
    store.join(&membership(&room, &b, NOW - 1)).await.unwrap();
    let members = store.members(&room, NOW).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0], membership(&room, &a, NOW + HOUR));
    assert!(
        store
            .members(&unique("empty"), NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Leaving returns what was removed, once.
pub async fn leave_returns_the_membership(store: Arc<dyn Store>) {
    let room = unique("room");
    let a = connection(&unique("c"), &unique("u"));
    store.put_connection(&a).await.unwrap();
    store
        .join(&membership(&room, &a, NOW + HOUR))
        .await
        .unwrap();
    let left = store.leave(&room, &a.connection_id).await.unwrap();
    assert_eq!(left, Some(membership(&room, &a, NOW + HOUR)));
    assert_eq!(store.leave(&room, &a.connection_id).await.unwrap(), None);
    assert!(store.members(&room, NOW).await.unwrap().is_empty());
    // A later disconnect does not resurrect or double-count it.
    let removed = store
        .remove_connection(&a.connection_id)
        .await
        .unwrap()
        .unwrap();
    assert!(removed.memberships.is_empty());
}

/// Refreshing keeps an active connection's memberships live.
pub async fn refresh_extends_memberships(store: Arc<dyn Store>) {
    let c = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    let rooms = [unique("r"), unique("r")];
    for room in &rooms {
        store.join(&membership(room, &c, NOW + 1000)).await.unwrap();
    }
    store
        .refresh_memberships(&c.connection_id, NOW + 500, NOW + HOUR)
        .await
        .unwrap();
    for room in &rooms {
        assert_eq!(
            store.members(room, NOW + 5000).await.unwrap().len(),
            1,
            "{room} still live"
        );
    }
    let got = store
        .get_connection(&c.connection_id, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.refreshed_at, NOW + 500);
}

/// Large rooms are listed completely (adapters must follow pagination).
pub async fn members_of_a_large_room_are_all_listed(store: Arc<dyn Store>) {
    let room = unique("big");
    for _ in 0..300 {
        let c = connection(&unique("c"), &unique("u"));
        store
            .join(&membership(&room, &c, NOW + HOUR))
            .await
            .unwrap();
    }
    assert_eq!(store.members(&room, NOW).await.unwrap().len(), 300);
}

/// Pages by cursor list every member exactly once, in connection-id order,
/// and say where the next page starts.
pub async fn member_pages_cover_the_room_once_in_order(store: Arc<dyn Store>) {
    let room = unique("paged");
    let mut ids = Vec::new();
    for _ in 0..23 {
        let c = connection(&unique("c"), &unique("u"));
        store.put_connection(&c).await.unwrap();
        store
            .join(&membership(&room, &c, NOW + HOUR))
            .await
            .unwrap();
        ids.push(c.connection_id);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .members_page(&room, after.as_deref(), 5, NOW)
            .await
            .unwrap();
        pages += 1;
        assert!(page.members.len() <= 5);
        seen.extend(page.members.into_iter().map(|m| m.connection_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, ids);
    assert!((5..=6).contains(&pages), "{pages} pages of 5 for 23");
    let empty = store
        .members_page(&unique("none"), None, 5, NOW)
        .await
        .unwrap();
    assert!(empty.members.is_empty() && empty.next.is_none());
}

/// The member count rises with new members only, and falls with leaves and
/// disconnects.
pub async fn member_count_follows_join_leave_and_disconnect(store: Arc<dyn Store>) {
    let room = unique("counted");
    assert_eq!(store.member_count(&room, NOW).await.unwrap(), 0);
    let mut conns = Vec::new();
    for _ in 0..4 {
        let c = connection(&unique("c"), &unique("u"));
        store.put_connection(&c).await.unwrap();
        store
            .join(&membership(&room, &c, NOW + HOUR))
            .await
            .unwrap();
        conns.push(c);
    }
    assert_eq!(store.member_count(&room, NOW).await.unwrap(), 4);
    // A refresh (joining again) is not a new member.
    store
        .join(&membership(&room, &conns[0], NOW + 2 * HOUR))
        .await
        .unwrap();
    assert_eq!(store.member_count(&room, NOW).await.unwrap(), 4);
    store.leave(&room, &conns[1].connection_id).await.unwrap();
    store.leave(&room, &conns[1].connection_id).await.unwrap();
    assert_eq!(
        store.member_count(&room, NOW).await.unwrap(),
        3,
        "a second leave changes nothing"
    );
    store
        .remove_connection(&conns[2].connection_id)
        .await
        .unwrap();
    assert_eq!(store.member_count(&room, NOW).await.unwrap(), 2);
}

/// Watchers are exactly the live members with the presence right.
pub async fn watchers_are_the_live_members_with_presence(store: Arc<dyn Store>) {
    let room = unique("room");
    let (a, b, c) = (
        connection(&unique("c"), &unique("u")),
        connection(&unique("c"), &unique("u")),
        connection(&unique("c"), &unique("u")),
    );
    let watcher = membership(&room, &a, NOW + HOUR);
    let silent = Membership {
        presence: false,
        ..membership(&room, &b, NOW + HOUR)
    };
    store.join(&watcher).await.unwrap();
    store.join(&silent).await.unwrap();
    store.join(&membership(&room, &c, NOW - 1)).await.unwrap();
    store
        .join(&membership(&unique("other"), &b, NOW + HOUR))
        .await
        .unwrap();
    assert_eq!(store.watchers(&room, NOW).await.unwrap(), vec![watcher]);
    assert_eq!(store.members(&room, NOW).await.unwrap().len(), 2);
    assert!(
        store
            .watchers(&unique("empty"), NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Watchers stay in step with leave, a re-join with other rights, refresh
/// and disconnect: nobody is told about a room they are no longer watching.
pub async fn watchers_follow_leave_rejoin_refresh_and_disconnect(store: Arc<dyn Store>) {
    let room = unique("room");
    let a = connection(&unique("c"), &unique("u"));
    store.put_connection(&a).await.unwrap();
    let ids = |w: Vec<Membership>| w.into_iter().map(|m| m.connection_id).collect::<Vec<_>>();
    store
        .join(&membership(&room, &a, NOW + 1000))
        .await
        .unwrap();
    // Refresh extends the watcher too.
    store
        .refresh_memberships(&a.connection_id, NOW + 500, NOW + HOUR)
        .await
        .unwrap();
    assert_eq!(
        ids(store.watchers(&room, NOW + 5000).await.unwrap()),
        vec![a.connection_id.clone()]
    );
    // A re-join without the presence right stops the watching.
    let demoted = Membership {
        presence: false,
        ..membership(&room, &a, NOW + HOUR)
    };
    assert!(!store.join(&demoted).await.unwrap().is_new);
    assert!(store.watchers(&room, NOW).await.unwrap().is_empty());
    assert_eq!(store.members(&room, NOW).await.unwrap(), vec![demoted]);
    // Leave and disconnect end it.
    store
        .join(&membership(&room, &a, NOW + HOUR))
        .await
        .unwrap();
    assert_eq!(store.watchers(&room, NOW).await.unwrap().len(), 1);
    store.leave(&room, &a.connection_id).await.unwrap();
    assert!(store.watchers(&room, NOW).await.unwrap().is_empty());
    store
        .join(&membership(&room, &a, NOW + HOUR))
        .await
        .unwrap();
    store.remove_connection(&a.connection_id).await.unwrap();
    assert!(store.watchers(&room, NOW).await.unwrap().is_empty());
}

/// One connection's membership of one room: present, absent, expired, left.
pub async fn membership_is_one_connections_live_membership(store: Arc<dyn Store>) {
    let (room, other) = (unique("room"), unique("room"));
    let a = connection(&unique("c"), &unique("u"));
    let m = membership(&room, &a, NOW + HOUR);
    store.join(&m).await.unwrap();
    assert_eq!(
        store
            .membership(&room, &a.connection_id, NOW)
            .await
            .unwrap(),
        Some(m)
    );
    assert_eq!(
        store
            .membership(&other, &a.connection_id, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .membership(&room, &a.connection_id, NOW + HOUR)
            .await
            .unwrap(),
        None,
        "expired"
    );
    store.leave(&room, &a.connection_id).await.unwrap();
    assert_eq!(
        store
            .membership(&room, &a.connection_id, NOW)
            .await
            .unwrap(),
        None
    );
}

/// A user's memberships of a room over all their live devices, and nobody
/// else's.
pub async fn user_memberships_are_all_devices_of_one_user(store: Arc<dyn Store>) {
    let (room, other) = (unique("room"), unique("room"));
    let (alice, bob) = (unique("alice"), unique("bob"));
    let phone = connection(&unique("c"), &alice);
    let laptop = connection(&unique("c"), &alice);
    let elsewhere = connection(&unique("c"), &alice);
    let stale = connection(&unique("c"), &alice);
    let b = connection(&unique("c"), &bob);
    for c in [&phone, &laptop, &elsewhere, &stale, &b] {
        store.put_connection(c).await.unwrap();
    }
    store
        .join(&membership(&room, &phone, NOW + HOUR))
        .await
        .unwrap();
    store
        .join(&membership(&room, &laptop, NOW + HOUR))
        .await
        .unwrap();
    store
        .join(&membership(&other, &elsewhere, NOW + HOUR))
        .await
        .unwrap();
    store
        .join(&membership(&room, &stale, NOW - 1))
        .await
        .unwrap();
    store
        .join(&membership(&room, &b, NOW + HOUR))
        .await
        .unwrap();
    let mut ids: Vec<String> = store
        .user_memberships(&room, &alice, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.connection_id)
        .collect();
    ids.sort();
    let mut want = vec![phone.connection_id.clone(), laptop.connection_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // A disconnected device no longer counts.
    store.remove_connection(&phone.connection_id).await.unwrap();
    assert_eq!(
        store.user_memberships(&room, &alice, NOW).await.unwrap(),
        vec![membership(&room, &laptop, NOW + HOUR)]
    );
    assert!(
        store
            .user_memberships(&room, &unique("nobody"), NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `memberships_of` lists a connection's live rooms; a membership carries
/// its connection's token expiry, and a re-join replaces it.
pub async fn memberships_of_lists_one_connections_rooms_with_token_expiry(store: Arc<dyn Store>) {
    let (r1, r2, r3) = (unique("room"), unique("room"), unique("room"));
    let c = connection(&unique("c"), &unique("u"));
    let other = connection(&unique("c"), &unique("u"));
    store.put_connection(&c).await.unwrap();
    store.join(&membership(&r1, &c, NOW + HOUR)).await.unwrap();
    store.join(&membership(&r2, &c, NOW + HOUR)).await.unwrap();
    store.join(&membership(&r3, &c, NOW - 1)).await.unwrap();
    store
        .join(&membership(&r1, &other, NOW + HOUR))
        .await
        .unwrap();
    let mut rooms: Vec<String> = store
        .memberships_of(&c.connection_id, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            assert_eq!(m.token_exp, c.token_exp);
            m.room
        })
        .collect();
    rooms.sort();
    let mut want = vec![r1.clone(), r2.clone()];
    want.sort();
    assert_eq!(rooms, want, "live rooms of this connection only");
    let renewed = Membership {
        token_exp: c.token_exp + 3600,
        ..membership(&r1, &c, NOW + HOUR)
    };
    assert!(
        !store.join(&renewed).await.unwrap().is_new,
        "a re-join is not new"
    );
    let members = store.members(&r1, NOW).await.unwrap();
    let mine = members
        .iter()
        .find(|m| m.connection_id == c.connection_id)
        .unwrap();
    assert_eq!(mine.token_exp, c.token_exp + 3600);
    store
        .refresh_memberships(&c.connection_id, NOW, NOW + 2 * HOUR)
        .await
        .unwrap();
    let watchers = store.watchers(&r1, NOW).await.unwrap();
    let mine = watchers
        .iter()
        .find(|m| m.connection_id == c.connection_id)
        .unwrap();
    assert_eq!(
        mine.token_exp,
        c.token_exp + 3600,
        "a refresh keeps the token expiry"
    );
}

/// Seqs start at 1 and increase by one per message; settled follows.
pub async fn append_assigns_gap_free_seqs(store: Arc<dyn Store>) {
    let room = unique("room");
    assert_eq!(store.seq_state(&room).await.unwrap().top, 0);
    assert_eq!(settle(&*store, &room, NOW).await.seq, 0);
    for i in 1..=5u64 {
        assert_eq!(
            new_seq(&*store, message(&room, "alice", &format!("m{i}"))).await,
            i
        );
    }
    assert_eq!(store.seq_state(&room).await.unwrap().top, 5);
    let settled = settle(&*store, &room, NOW).await;
    assert_eq!((settled.seq, settled.above.len()), (5, 0));
    assert_eq!(store.seq_state(&room).await.unwrap().settled, 5, "raised");
    let page = store.history_before(&room, None, 1, NOW).await.unwrap();
    assert_eq!(
        page.messages[0].data,
        message(&room, "alice", "m5").data,
        "data round-trips"
    );
}

/// A room's epoch is born with its counter, is the same on every seq of
/// the stream (as sent, stored and read back), and differs between
/// streams.
pub async fn a_rooms_epoch_is_made_with_its_stream_and_kept(store: Arc<dyn Store>) {
    let (room, other) = (unique("room"), unique("room"));
    assert_eq!(
        store.seq_state(&room).await.unwrap().epoch,
        "",
        "no stream yet"
    );
    assert_eq!(settle(&*store, &room, NOW).await.epoch, "");
    let first = match append(&*store, message(&room, "alice", "m1")).await {
        Appended::New { message, .. } => message,
        other => panic!("{other:?}"),
    };
    let epoch = first.epoch.clone();
    assert!(crate::protocol::limits::valid_epoch(&epoch), "{epoch:?}");
    new_seq(&*store, message(&room, "alice", "m2")).await;
    assert_eq!(store.seq_state(&room).await.unwrap().epoch, epoch);
    assert_eq!(settle(&*store, &room, NOW).await.epoch, epoch);
    let page = store.history_after(&room, 0, 10, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 2);
    assert!(
        page.messages.iter().all(|m| m.epoch == epoch),
        "stored with it"
    );
    new_seq(&*store, message(&other, "alice", "m1")).await;
    assert_ne!(store.seq_state(&other).await.unwrap().epoch, epoch);
}

/// The same sender and id in the same room is a duplicate with the
/// original seq.
pub async fn append_is_idempotent_per_sender_and_room(store: Arc<dyn Store>) {
    let (room, other_room) = (unique("room"), unique("room"));
    assert_eq!(new_seq(&*store, message(&room, "alice", "x")).await, 1);
    assert_eq!(new_seq(&*store, message(&room, "alice", "y")).await, 2);
    let again = append(&*store, message(&room, "alice", "x")).await;
    assert_eq!(again, Appended::Duplicate { seq: 1 });
    assert_eq!(
        store.seq_state(&room).await.unwrap().top,
        2,
        "a duplicate takes no seq"
    );
    assert_eq!(
        new_seq(&*store, message(&room, "bob", "x")).await,
        3,
        "ids are per sender"
    );
    assert_eq!(
        new_seq(&*store, message(&other_room, "alice", "x")).await,
        1,
        "and per room"
    );
    let page = store.history_before(&room, None, 10, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 3, "the duplicate was not stored");
}

/// A writer that takes a seq and dies leaves a hole: readers stop below
/// it (and are given what is stored above it) until it is older than the
/// hole timeout, then a tombstone closes it. The late writer's commit then
/// fails, and its retry of the same id takes a new seq; nothing is lost.
pub async fn a_dead_writers_hole_is_closed_after_the_timeout_and_a_late_writer_takes_a_new_seq(
    store: Arc<dyn Store>,
) {
    let room = unique("room");
    assert_eq!(new_seq(&*store, message(&room, "alice", "a")).await, 1);
    let dead = store.reserve_seq(&room, NOW).await.unwrap().seq;
    assert_eq!(dead, 2);
    assert_eq!(new_seq(&*store, message(&room, "bob", "c")).await, 3);
    let young = settle(&*store, &room, NOW + HOLE_TIMEOUT - 1).await;
    assert_eq!(young.seq, 1, "nothing is promised past an open hole");
    assert_eq!(
        young.above.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3],
        "what is stored above it is handed over"
    );
    let old = settle(&*store, &room, NOW + HOLE_TIMEOUT).await;
    assert_eq!((old.seq, old.above.len()), (3, 0), "closed, and passed");
    // The writer wakes up and commits into its slot: refused.
    let late = message(&room, "carol", "b");
    let outcome = store
        .commit(&at_seq(&late, dead), late.expires_at, NOW + HOUR, "late")
        .await
        .unwrap();
    assert_eq!(outcome, Committed::SlotClosed);
    // Its client retries with the same id: a new seq, stored once.
    assert_eq!(new_seq(&*store, late.clone()).await, 4);
    let page = store.history_after(&room, 0, 10, NOW).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 3, 4], "tombstones are never shown");
    assert_eq!(page.first_slot, Some(1));
    let after_one = store.history_after(&room, 1, 10, NOW).await.unwrap();
    assert_eq!(
        after_one.first_slot,
        Some(2),
        "a resume sees the closed slot follow its `since`"
    );
    assert_eq!(settle(&*store, &room, NOW + HOLE_TIMEOUT).await.seq, 4);
}

/// A commit that was stored but whose answer was lost is retried by the
/// SDK with the same writer token: it is reported stored (so it is fanned
/// out), while another writer with the same id is told it is a duplicate.
pub async fn a_commit_whose_answer_was_lost_is_reported_stored(store: Arc<dyn Store>) {
    let room = unique("room");
    let msg = message(&room, "alice", "once");
    let seq = store.reserve_seq(&room, NOW).await.unwrap().seq;
    let stored = at_seq(&msg, seq);
    for _ in 0..2 {
        let outcome = store
            .commit(&stored, msg.expires_at, NOW + HOUR, "writer-1")
            .await
            .unwrap();
        assert_eq!(outcome, Committed::Stored);
    }
    let other = store.reserve_seq(&room, NOW).await.unwrap().seq;
    let outcome = store
        .commit(&at_seq(&msg, other), msg.expires_at, NOW + HOUR, "writer-2")
        .await
        .unwrap();
    assert_eq!(outcome, Committed::Duplicate { seq });
    let page = store.history_after(&room, 0, 10, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 1);
}

/// A tombstone and a late writer racing for the same slot: exactly one of
/// them gets it, every time.
pub async fn tombstones_racing_late_writers_each_slot_has_one_winner(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut races = tokio::task::JoinSet::new();
    for i in 0..12 {
        let seq = store.reserve_seq(&room, NOW).await.unwrap().seq;
        let msg = message(&room, "alice", &format!("r{i}"));
        let (a, b) = (store.clone(), store.clone());
        let room = room.clone();
        races.spawn(async move {
            let stored = at_seq(&msg, seq);
            let (commit, close) = tokio::join!(
                a.commit(&stored, msg.expires_at, NOW + HOUR, "w"),
                b.close_slot(&room, seq, NOW, NOW + HOUR),
            );
            (seq, commit.unwrap(), close.unwrap())
        });
    }
    while let Some(race) = races.join_next().await {
        let (seq, commit, closed) = race.unwrap();
        match (commit, closed) {
            (Committed::Stored, false) | (Committed::SlotClosed, true) => {}
            other => panic!("slot {seq}: both or neither won: {other:?}"),
        }
        let slot = store.slots(&room, seq - 1, seq, NOW).await.unwrap();
        assert_eq!(slot.len(), 1, "slot {seq} is filled exactly once");
        assert_eq!(matches!(slot[0], Slot::Closed { .. }), closed);
    }
}

/// New joins racing into one room each see their own count, 1 to N: the
/// join that takes a room past the presence cap is exactly one of them.
pub async fn racing_joins_each_see_their_own_count(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, room) = (store.clone(), room.clone());
        joins.spawn(async move {
            let c = connection(&unique("c"), &unique("u"));
            store.put_connection(&c).await.unwrap();
            store
                .join(&membership(&room, &c, NOW + HOUR))
                .await
                .unwrap()
        });
    }
    let mut counts = Vec::new();
    while let Some(outcome) = joins.join_next().await {
        let outcome = outcome.unwrap();
        assert!(outcome.is_new);
        counts.push(outcome.count.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=8).collect::<Vec<u64>>());
}

/// Senders racing to start a room's stream all get the one epoch that
/// the counter was created with (DynamoDB: `if_not_exists` in the same
/// atomic update that takes the seq).
pub async fn concurrent_first_sends_share_one_epoch(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut tasks = Vec::new();
    for sender in 0..8 {
        let store = store.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            match append(&*store, message(&room, &format!("user{sender}"), "first")).await {
                Appended::New { message, .. } => message.epoch,
                other => panic!("{other:?}"),
            }
        }));
    }
    let mut epochs = std::collections::BTreeSet::new();
    for t in tasks {
        epochs.insert(t.await.unwrap());
    }
    let held = store.seq_state(&room).await.unwrap().epoch;
    assert_eq!(epochs, std::collections::BTreeSet::from([held.clone()]));
    assert!(!held.is_empty());
}

/// Many concurrent senders get distinct seqs, and once they are done the
/// room settles at the top with no hole.
pub async fn concurrent_appends_get_distinct_gap_free_seqs(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut tasks = Vec::new();
    for sender in 0..8 {
        let store = store.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..5 {
                let msg = message(&room, &format!("user{sender}"), &format!("m{i}"));
                seqs.push(new_seq(&*store, msg).await);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
    assert_eq!(settle(&*store, &room, NOW).await.seq, 40);
}

/// While senders race, every seq a reader is promised is settled: what
/// `join` does (settle, then read history) never names a seq whose slot
/// is still empty, so a client that skips to it skips nothing that will
/// be stored later.
pub async fn readers_are_never_promised_a_seq_that_is_not_settled(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..6 {
        let (store, room) = (store.clone(), room.clone());
        senders.spawn(async move {
            for i in 0..8 {
                let msg = message(&room, &format!("user{sender}"), &format!("m{i}"));
                new_seq(&*store, msg).await;
            }
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (store, room) = (store.clone(), room.clone());
        readers.spawn(async move {
            let mut reads = 0;
            loop {
                let settled = settle(&*store, &room, NOW).await;
                let slots = store.slots(&room, 0, settled.seq, NOW).await.unwrap();
                let filled: Vec<u64> = slots.iter().map(Slot::seq).collect();
                assert_eq!(
                    filled,
                    (1..=settled.seq).collect::<Vec<u64>>(),
                    "settled at {} with a slot still empty",
                    settled.seq
                );
                assert!(settled.above.iter().all(|m| m.seq > settled.seq + 1));
                reads += 1;
                if settled.seq == 48 {
                    return reads;
                }
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    while let Some(reads) = readers.join_next().await {
        assert!(reads.unwrap() >= 1);
    }
}

/// The same send retried concurrently (a resend racing the original) is
/// stored once; the others are told its seq, and the seqs they took are
/// closed at once, so the room settles past them with no wait.
pub async fn concurrent_retries_of_one_send_store_it_once(store: Arc<dyn Store>) {
    let room = unique("room");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (store, room) = (store.clone(), room.clone());
        tasks.spawn(async move { append(&*store, message(&room, "alice", "same")).await });
    }
    let mut new = Vec::new();
    let mut duplicates = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Appended::New { message, .. } => new.push(message.seq),
            Appended::Duplicate { seq } => duplicates.push(seq),
        }
    }
    assert_eq!(new.len(), 1, "stored exactly once");
    assert!(duplicates.iter().all(|d| *d == new[0]), "{duplicates:?}");
    let top = store.seq_state(&room).await.unwrap().top;
    assert_eq!(settle(&*store, &room, NOW).await.seq, top, "no hole left");
    let page = store.history_after(&room, 0, 10, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(
        new_seq(&*store, message(&room, "alice", "next")).await,
        top + 1
    );
}

/// History pages go newest first, with `more` and `before`.
pub async fn history_pages_newest_first(store: Arc<dyn Store>) {
    let room = unique("room");
    for i in 1..=25 {
        new_seq(&*store, message(&room, "alice", &format!("m{i}"))).await;
    }
    let seqs = |p: &super::Page| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let p1 = store.history_before(&room, None, 10, NOW).await.unwrap();
    assert_eq!(seqs(&p1), (16..=25).rev().collect::<Vec<u64>>());
    assert!(p1.more);
    let p2 = store
        .history_before(&room, Some(16), 10, NOW)
        .await
        .unwrap();
    assert_eq!(seqs(&p2), (6..=15).rev().collect::<Vec<u64>>());
    assert!(p2.more);
    let p3 = store.history_before(&room, Some(6), 10, NOW).await.unwrap();
    assert_eq!(seqs(&p3), (1..=5).rev().collect::<Vec<u64>>());
    assert!(!p3.more);
    let empty = store
        .history_before(&unique("none"), None, 10, NOW)
        .await
        .unwrap();
    assert!(empty.messages.is_empty() && !empty.more);
    let m = &p1.messages[0];
    assert_eq!(
        (m.id.as_str(), m.from.user.as_str(), m.ts),
        ("m25", "alice", NOW)
    );
}

/// Resume reads forward from a seq, oldest first.
pub async fn history_after_resumes_in_order(store: Arc<dyn Store>) {
    let room = unique("room");
    for i in 1..=10 {
        new_seq(&*store, message(&room, "alice", &format!("m{i}"))).await;
    }
    let p = store.history_after(&room, 4, 3, NOW).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert!(p.more);
    let p = store.history_after(&room, 7, 10, NOW).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![8, 9, 10]
    );
    assert!(!p.more);
    assert!(
        store
            .history_after(&room, 10, 10, NOW)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

/// Messages past retention are not returned, whatever the backend's cleanup.
pub async fn expired_history_is_skipped(store: Arc<dyn Store>) {
    let room = unique("room");
    for i in 1..=6 {
        let mut m = message(&room, "alice", &format!("m{i}"));
        m.expires_at = if i <= 3 { NOW + 1000 } else { NOW + HOUR };
        new_seq(&*store, m).await;
    }
    let later = NOW + 2000;
    let p = store.history_after(&room, 0, 10, later).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    let p = store.history_before(&room, None, 10, later).await.unwrap();
    assert_eq!(p.messages.len(), 3);
    assert!(!p.more);
}

/// Direct-message ids are deduplicated per sender until the marker expires.
pub async fn direct_markers_dedupe_until_expiry(store: Arc<dyn Store>) {
    let user = unique("u");
    assert!(
        store
            .mark_direct(&user, "d1", NOW, NOW + HOUR)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_direct(&user, "d1", NOW + 10, NOW + HOUR)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_direct(&user, "d2", NOW, NOW + HOUR)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_direct(&unique("u"), "d1", NOW, NOW + HOUR)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_direct(&user, "d1", NOW + HOUR + 1, NOW + 2 * HOUR)
            .await
            .unwrap()
    );
}

/// A user is refused until the revocation's time, and a later revocation
/// replaces the earlier one (a past time lifts it). Other users and the
/// user's connection index are untouched.
pub async fn revocations_hold_until_their_time_and_are_replaced(store: Arc<dyn Store>) {
    let user = unique("u");
    assert_eq!(store.revoked_until(&user, NOW).await.unwrap(), None);
    store
        .put_connection(&connection(&unique("c"), &user))
        .await
        .unwrap();
    store.revoke(&user, NOW + HOUR).await.unwrap();
    assert_eq!(
        store.revoked_until(&user, NOW).await.unwrap(),
        Some(NOW + HOUR)
    );
    assert_eq!(
        store.revoked_until(&user, NOW + HOUR).await.unwrap(),
        None,
        "over at its time"
    );
    assert_eq!(store.revoked_until(&unique("u"), NOW).await.unwrap(), None);
    assert_eq!(store.user_connections(&user, NOW).await.unwrap().len(), 1);
    store.revoke(&user, NOW - 1).await.unwrap();
    assert_eq!(
        store.revoked_until(&user, NOW).await.unwrap(),
        None,
        "lifted"
    );
}

#[cfg(test)]
mod memory_adapter {
    crate::store_conformance_tests!(async {
        ::std::sync::Arc::new(crate::store::memory::MemoryStore::new())
    });
}
