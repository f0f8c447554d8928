//! The server API's operations through the ports.

use super::*;
use crate::routes::server::{self, Kick, ServerError};

fn kick() -> Kick {
    Kick::new(Some(4001), Some("kicked by a moderator".into())).unwrap()
}

#[tokio::test]
async fn room_info_counts_members_lists_who_is_present_and_the_seq() {
    let w = World::new();
    w.connect("a1", "alice").await;
    w.connect("a2", "alice").await;
    w.connect("b1", "bob").await;
    for c in ["a1", "a2", "b1"] {
        w.join(c, "lobby").await;
    }
    w.reply(
        "a1",
        json!({"action": "send", "room": "lobby", "id": "m1", "data": 1}),
    )
    .await;
    let info = server::room_info(&w.ctx(), "lobby").await.unwrap();
    assert_eq!(info.member_count, 3);
    assert_eq!(info.seq, 1);
    assert!(!info.present_truncated);
    let present: Vec<(&str, u32)> = info
        .present
        .iter()
        .map(|m| (m.user.as_str(), m.devices))
        .collect();
    assert_eq!(present, vec![("alice", 2), ("bob", 1)]);
    // An unknown room is an empty one; a bad name is a typed error.
    let empty = server::room_info(&w.ctx(), "nobody-here").await.unwrap();
    assert_eq!(
        (empty.member_count, empty.seq, empty.present.len()),
        (0, 0, 0)
    );
    assert!(matches!(
        server::room_info(&w.ctx(), "bad room!").await,
        Err(ServerError::Invalid(_))
    ));
}

#[tokio::test]
async fn members_come_in_pages_that_cover_the_room_once() {
    let w = World::new();
    for i in 0..5 {
        let c = format!("c{i}");
        w.connect(&c, &format!("u{i}")).await;
        w.join(&c, "r").await;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = server::members(&w.ctx(), "r", cursor.as_deref(), Some(2))
            .await
            .unwrap();
        assert!(page.members.len() <= 2);
        seen.extend(page.members.into_iter().map(|m| m.connection_id));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, vec!["c0", "c1", "c2", "c3", "c4"]);
    for bad in [0, server::MEMBERS_PAGE_MAX + 1] {
        assert!(matches!(
            server::members(&w.ctx(), "r", None, Some(bad)).await,
            Err(ServerError::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn history_is_the_page_clients_get_and_an_unknown_room_has_none() {
    let w = World::new();
    w.connect("a1", "alice").await;
    for i in 0..5 {
        w.reply(
            "a1",
            json!({"action": "send", "room": "r", "id": format!("m{i}"), "data": i}),
        )
        .await;
    }
    let page = server::history(&w.ctx(), "r", None, Some(3)).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![5, 4, 3]);
    assert!(page.more);
    let rest = server::history(&w.ctx(), "r", Some(3), None).await.unwrap();
    assert_eq!(
        rest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(!rest.more);
    let none = server::history(&w.ctx(), "unknown", None, None)
        .await
        .unwrap();
    assert!(none.messages.is_empty());
    assert!(matches!(
        server::history(&w.ctx(), "r", None, Some(0)).await,
        Err(ServerError::Invalid(_))
    ));
}

#[tokio::test]
async fn disconnect_tells_each_device_why_then_closes_it() {
    let w = World::new();
    w.connect("a1", "alice").await;
    w.connect("a2", "alice").await;
    w.connect("b1", "bob").await;
    let done = server::disconnect_user(&w.ctx(), "alice", &kick(), false)
        .await
        .unwrap();
    assert_eq!(done.disconnected, 2);
    for c in ["a1", "a2"] {
        assert_eq!(
            w.frames(c),
            vec![
                json!({"type": "closing", "code": 4001, "reason": "kicked by a moderator", "reconnect": false})
            ]
        );
    }
    let mut deleted = w.gateway.deleted();
    deleted.sort();
    assert_eq!(deleted, vec!["a1", "a2"]);
    assert!(w.frames("b1").is_empty());
    // Nobody by that name: nothing to do, not an error.
    let none = server::disconnect_user(&w.ctx(), "ghost", &kick(), true)
        .await
        .unwrap();
    assert_eq!(none.disconnected, 0);
}

#[tokio::test]
async fn kick_codes_and_reasons_are_checked() {
    assert!(
        Kick::new(Some(1000), None).is_err(),
        "not a private-use code"
    );
    assert!(Kick::new(Some(5000), None).is_err());
    assert!(
        Kick::new(None, Some("x".repeat(124))).is_err(),
        "over a close frame's 123 bytes"
    );
    assert_eq!(Kick::new(None, None).unwrap().code, 4000);
}

#[tokio::test]
async fn a_revoked_user_is_closed_now_and_refused_until_the_time() {
    let w = World::new().with_events();
    w.connect("a1", "alice").await;
    w.join("a1", "lobby").await;
    w.events.take();
    let until = T0 + 60_000;
    let done = server::revoke_user(&w.ctx(), "alice", until, &kick())
        .await
        .unwrap();
    w.outbox.flush().await;
    assert_eq!((done.disconnected, done.until), (1, Some(until)));
    assert_eq!(w.frames("a1")[0]["reconnect"], false);
    // Its state is gone at once, with the backend's code as the close.
    assert!(w.store.get_connection("a1", T0).await.unwrap().is_none());
    let closed: Vec<Value> = w
        .events
        .take()
        .into_iter()
        .filter(|(k, _)| *k == "Connection Closed")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(closed[0]["closeCode"], 4001);
    // A new connection is refused...
    let identity = w.identity("alice", RoomRights::all());
    let refused = connect(&*w.store, &w.clock, &w.config, "a9", &identity, &w.outbox).await;
    assert!(
        matches!(refused, Err(RouteError::Rejected(ref e)) if e.code == ErrorCode::Forbidden),
        "{refused:?}"
    );
    assert!(
        w.store.get_connection("a9", T0).await.unwrap().is_none(),
        "and not left registered"
    );
    // ...and a frame from the old one is not healed back in, even with a
    // still-valid identity in its event.
    let frame = json!({"action": "hello"}).to_string();
    let reply = message(
        &w.ctx(),
        None,
        inbound("a1", Some(&identity), &frame, false),
    )
    .await;
    assert!(reply.is_none());
    assert!(w.store.get_connection("a1", T0).await.unwrap().is_none());
    // Others are unaffected; after the time, alice may come back.
    w.connect("b1", "bob").await;
    w.clock.advance_ms(60_001);
    connect(&*w.store, &w.clock, &w.config, "a9", &identity, &w.outbox)
        .await
        .unwrap();
    // A time in the past is a bad request.
    assert!(matches!(
        server::revoke_user(&w.ctx(), "alice", T0, &kick()).await,
        Err(ServerError::Invalid(_))
    ));
}

/// User ids are matched byte for byte: a revocation or a kick names one
/// user and never another that differs from it in case or surrounding
/// whitespace; an id no token can carry is refused, not trimmed.
#[tokio::test]
async fn revocations_and_kicks_name_one_user_exactly() {
    let w = World::new();
    w.connect("m1", "mallory").await;
    w.connect("m2", "Mallory").await;
    for near in [" mallory", "mallory ", "\tmallory", "mallory\n"] {
        assert!(
            matches!(
                server::revoke_user(&w.ctx(), near, T0 + 60_000, &kick()).await,
                Err(ServerError::Invalid(_))
            ),
            "{near:?}"
        );
        assert!(
            matches!(
                server::disconnect_user(&w.ctx(), near, &kick(), false).await,
                Err(ServerError::Invalid(_))
            ),
            "{near:?}"
        );
    }
    let done = server::revoke_user(&w.ctx(), "Mallory", T0 + 60_000, &kick())
        .await
        .unwrap();
    assert_eq!(done.disconnected, 1);
    assert!(w.store.get_connection("m2", T0).await.unwrap().is_none());
    assert!(
        w.store.get_connection("m1", T0).await.unwrap().is_some(),
        "mallory is not Mallory"
    );
    assert!(w.frames("m1").is_empty());
    let identity = w.identity("mallory", RoomRights::all());
    connect(&*w.store, &w.clock, &w.config, "m3", &identity, &w.outbox)
        .await
        .expect("mallory is not revoked");
}
