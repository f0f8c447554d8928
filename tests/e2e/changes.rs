//! Messages that change (docs/protocol.md, "Messages that change"), end to
//! end on DynamoDB (moto) with several clients at once: edits racing by
//! the author and a moderator, refusals with their error and `ref`, a
//! client that resumes past edits and a delete to the same state as one
//! that stayed, and a deleted message's data gone from every stored item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::emulator::*;
use roomcast_aws::auth::{DevClaims, Right, RoomRights, mint_hs256};
use roomcast_emulator::RunningEmulator;
use serde_json::{Value, json};

/// A token for `user` with `rights` on every room.
fn token(user: &str, rights: Vec<Right>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    let claims = DevClaims {
        sub: user.into(),
        name: user.into(),
        exp,
        rooms: RoomRights::new([("*".to_owned(), rights)].into()),
        direct: false,
        iss: None,
        aud: None,
    };
    mint_hs256(&claims, installation_secret().as_bytes()).unwrap()
}

fn member() -> Vec<Right> {
    vec![Right::Join, Right::Send]
}

async fn on_moto() -> (RunningEmulator, String) {
    let table = format!("roomcast-changes-{}", uuid::Uuid::new_v4().simple());
    let emu =
        start(config("template.yaml").dynamodb(common::dynamodb_endpoint(), table.clone(), true))
            .await;
    (emu, table)
}

/// Sends a frame and returns the ack (or the error) with its ref.
async fn ask(ws: &mut Ws, mut frame: Value, reference: &str) -> Value {
    frame["ref"] = json!(reference);
    send(ws, frame).await;
    loop {
        let v = recv(ws).await;
        if v["ref"] == reference {
            return v;
        }
    }
}

/// The message at `seq` in a `history` reply.
fn in_page(page: &Value, seq: u64) -> Value {
    let messages = page["messages"].as_array().expect("a history page");
    let found = messages.iter().find(|m| m["seq"] == seq);
    found
        .unwrap_or_else(|| panic!("no seq {seq} in {page}"))
        .clone()
}

/// Every message frame `ws` receives until it has every seq from `from`
/// to `upto`, in seq order. Frames of changes made at once may arrive out
/// of order on a raw socket (separate invocations fan them out, as with
/// racing sends); the clients order them by seq (docs/protocol.md).
async fn messages_upto(ws: &mut Ws, from: u64, upto: u64) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let has = |seen: &[Value], seq: u64| seen.iter().any(|m| m["seq"] == seq);
    while !(from..=upto).all(|seq| has(&seen, seq)) {
        seen.push(recv_type(ws, "message").await);
    }
    seen.sort_by_key(|m| m["seq"].as_u64().unwrap());
    seen
}

#[tokio::test]
async fn edits_race_deletes_erase_and_a_resumed_client_catches_up() {
    let (emu, table) = on_moto().await;
    let (mut alice, _) = join_with_token(&emu, &token("alice", member()), "r").await;
    let (mut moderator, _) = join_with_token(
        &emu,
        &token("mod", vec![Right::Join, Right::Send, Right::Moderate]),
        "r",
    )
    .await;
    let (mut bob, _) = join_with_token(&emu, &token("bob", member()), "r").await;
    let (mut carol, _) = join_with_token(&emu, &token("carol", member()), "r").await;

    let sent = ask(
        &mut alice,
        json!({"action": "send", "room": "r", "id": "m1", "data": "the secret plan"}),
        "s",
    )
    .await;
    let m1 = sent["seq"].as_u64().unwrap();
    // Carol saw m1, then drops off.
    assert_eq!(
        messages_upto(&mut carol, m1, m1).await.last().unwrap()["data"],
        "the secret plan"
    );
    carol.close(None).await.unwrap();

    // The author and a moderator edit at once: both are stored, each with
    // its own seq; the later seq is the message's version.
    let (a, m) = tokio::join!(
        ask(
            &mut alice,
            json!({"action": "edit", "room": "r", "id": "e1", "message": "m1", "replaces": m1, "data": "the secret plan, fixed"}),
            "ea"
        ),
        ask(
            &mut moderator,
            json!({"action": "edit", "room": "r", "id": "e2", "message": "m1", "author": "alice", "data": "moderated plan"}),
            "em"
        ),
    );
    assert_eq!(
        (a["type"].as_str(), m["type"].as_str()),
        (Some("ack"), Some("ack")),
        "{a} {m}"
    );
    let (ea, em) = (a["seq"].as_u64().unwrap(), m["seq"].as_u64().unwrap());
    assert_ne!(ea, em);
    let later = if ea > em {
        "the secret plan, fixed"
    } else {
        "moderated plan"
    };
    // A repeated change is acked with its seq and not applied again.
    let again = ask(
        &mut alice,
        json!({"action": "edit", "room": "r", "id": "e1", "message": "m1", "data": "x"}),
        "again",
    )
    .await;
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(ea), Some(true))
    );

    // Bob sees both changes in order, each naming m1.
    let bobs = messages_upto(&mut bob, m1, ea.max(em)).await;
    let changes: Vec<&Value> = bobs.iter().filter(|f| f["change"].is_object()).collect();
    assert_eq!(changes.len(), 2, "{bobs:?}");
    assert!(changes.iter().all(|c| c["change"]["message"] == "m1"
        && c["change"]["seq"] == m1
        && c["change"]["author"] == "alice"));
    assert!(changes[0]["seq"].as_u64() < changes[1]["seq"].as_u64());

    // Refusals, each with its code and ref.
    let forbidden = ask(&mut bob, json!({"action": "edit", "room": "r", "id": "b1", "message": "m1", "author": "alice", "data": "mine now"}), "b1").await;
    assert_eq!(
        (forbidden["type"].as_str(), forbidden["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{forbidden}"
    );
    let missing = ask(
        &mut bob,
        json!({"action": "delete", "room": "r", "id": "b2", "message": "m1"}),
        "b2",
    )
    .await;
    assert_eq!(
        missing["code"], "not_found",
        "bob has no message m1: {missing}"
    );
    let exact = ask(&mut moderator, json!({"action": "edit", "room": "r", "id": "b3", "message": "m1", "author": "Alice", "data": 1}), "b3").await;
    assert_eq!(
        exact["code"], "not_found",
        "authors are compared exactly: {exact}"
    );

    // The history shows the latest version with its revision.
    let latest = ask(&mut bob, json!({"action": "history", "room": "r"}), "h").await;
    let original = in_page(&latest, m1);
    assert_eq!(original["data"], later);
    assert_eq!(original["revision"]["seq"], ea.max(em));

    // Alice deletes it.
    let deleted = ask(
        &mut alice,
        json!({"action": "delete", "room": "r", "id": "d1", "message": "m1"}),
        "d",
    )
    .await;
    let d1 = deleted["seq"].as_u64().unwrap();
    let gone = ask(&mut moderator, json!({"action": "edit", "room": "r", "id": "e3", "message": "m1", "author": "alice", "data": 2}), "e3").await;
    assert_eq!(
        gone["code"], "not_found",
        "a deleted message cannot be edited: {gone}"
    );

    // Carol resumes from m1 and gets the two edits and the delete, in
    // order, with the edits' data erased: the state Bob has.
    let (mut carol, _) = connect_with_token(&emu, &token("carol", member())).await;
    let joined = ask(
        &mut carol,
        json!({"action": "join", "room": "r", "since": m1}),
        "j",
    )
    .await;
    let missed = joined["missed"].as_array().unwrap();
    let kinds: Vec<(&str, u64)> = missed
        .iter()
        .map(|x| {
            (
                x["change"]["kind"].as_str().unwrap_or("message"),
                x["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = vec![("edit", ea.min(em)), ("edit", ea.max(em)), ("delete", d1)];
    want.sort_by_key(|(_, seq)| *seq);
    assert_eq!(kinds, want, "{joined}");
    assert!(
        missed.iter().all(|x| x["data"].is_null()),
        "every version erased: {joined}"
    );

    // The tombstone: no data, who and when.
    let page = ask(&mut carol, json!({"action": "history", "room": "r"}), "h2").await;
    let tombstone = in_page(&page, m1);
    assert_eq!(tombstone["data"], Value::Null);
    assert_eq!(tombstone["revision"]["deleted"], true);
    assert_eq!(tombstone["revision"]["by"]["user"], "alice");

    // No stored item keeps the message's data.
    let client = roomcast_aws::dynamodb::client(
        &roomcast_emulator::local_sdk_config().await,
        Some(&common::dynamodb_endpoint()),
    );
    let scan = client.scan().table_name(&table).send().await.unwrap();
    let text = format!("{:?}", scan.items());
    for secret in ["the secret plan", "moderated plan"] {
        assert!(!text.contains(secret), "{secret:?} is still stored");
    }
    emu.shutdown().await;
}

/// The server API's `edit` and `delete` (docs/server-api.md): the backend
/// changes any member's message as a moderator; members get the changes in
/// the stream; a repeated id is not applied twice; a message that is not
/// there is a typed refusal.
#[tokio::test]
async fn the_backend_edits_and_deletes_any_message() {
    let emu = start(config("template.yaml")).await;
    let (mut alice, _) = join_with_token(&emu, &token("alice", member()), "r").await;
    let (mut bob, _) = join_with_token(&emu, &token("bob", member()), "r").await;
    let sent = ask(
        &mut alice,
        json!({"action": "send", "room": "r", "id": "m1", "data": "spam"}),
        "s",
    )
    .await;
    let m1 = sent["seq"].as_u64().unwrap();
    let api = roomcast_server_api::ServerApi::new(lambda_client(&emu).await, "PublishFunction");
    let edited = api
        .edit(
            "r",
            "alice",
            "m1",
            json!("[removed by a moderator]"),
            "mod-1",
        )
        .await
        .unwrap();
    assert!(!edited.duplicate);
    let again = api
        .edit("r", "alice", "m1", json!("other"), "mod-1")
        .await
        .unwrap();
    assert_eq!((again.seq, again.duplicate), (edited.seq, true));
    let deleted = api.delete("r", "alice", "m1", "mod-2").await.unwrap();
    let frames = messages_upto(&mut bob, m1, deleted.seq.unwrap()).await;
    let changes: Vec<(&str, &str)> = frames
        .iter()
        .filter_map(|f| Some((f["change"]["kind"].as_str()?, f["from"]["user"].as_str()?)))
        .collect();
    assert_eq!(changes, vec![("edit", "server"), ("delete", "server")]);
    let missing = api.delete("r", "alice", "nope", "mod-3").await.unwrap_err();
    assert!(
        matches!(&missing, roomcast_server_api::ServerApiError::InvalidRequest(m) if m.contains("no message nope")),
        "{missing}"
    );
    let page = api.history("r", None, None).await.unwrap();
    let tombstone = page.messages.iter().find(|m| m.seq == m1).unwrap();
    assert_eq!(tombstone.data, Value::Null);
    assert!(
        tombstone
            .revision
            .as_ref()
            .is_some_and(|r| r.deleted && r.by.user == "server")
    );
    emu.shutdown().await;
}

/// Changes with every function as its real binary on moto: the message
/// function's role allows every call a change makes (the emulator checks
/// the roles as IAM does).
#[tokio::test]
async fn changes_need_no_right_the_template_does_not_grant() {
    let emu = roomcast_processes_on_moto().await;
    let _roles = no_access_denied(&emu);
    let (mut alice, _) = join_with_token(&emu, &token("alice", member()), "r").await;
    let sent = ask(
        &mut alice,
        json!({"action": "send", "room": "r", "id": "m1", "data": 1}),
        "s",
    )
    .await;
    assert_eq!(sent["type"], "ack", "{sent}");
    let edited = ask(
        &mut alice,
        json!({"action": "edit", "room": "r", "id": "e1", "message": "m1", "data": 2}),
        "e",
    )
    .await;
    assert_eq!(edited["type"], "ack", "{edited}");
    let deleted = ask(
        &mut alice,
        json!({"action": "delete", "room": "r", "id": "d1", "message": "m1"}),
        "d",
    )
    .await;
    assert_eq!(deleted["type"], "ack", "{deleted}");
    let page = ask(&mut alice, json!({"action": "history", "room": "r"}), "h").await;
    let m1 = &page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "m1")
        .unwrap()
        .clone();
    assert_eq!(m1["revision"]["deleted"], true, "{page}");
    emu.shutdown().await;
}
