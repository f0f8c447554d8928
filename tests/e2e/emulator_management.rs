//! The `@connections` Management API, through the real
//! aws-sdk-apigatewaymanagement client pointed at the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use common::emulator::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn connected(
    emu: &roomcast_emulator::RunningEmulator,
    rec: &Recorder,
    key: &str,
) -> (Ws, String) {
    let mut ws = connect(&format!("ws://{}/test?key={key}", emu.addr)).await;
    send(&mut ws, json!({"action": "echo"})).await;
    let id = recv(&mut ws).await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    rec.wait_for("connect", |e| {
        e["requestContext"]["connectionId"] == id.as_str()
    })
    .await;
    (ws, id)
}

#[tokio::test]
async fn post_sends_text_or_binary_frames_on_both_paths() {
    let (emu, rec) = probe(|c| c).await;
    let (mut ws, id) = connected(&emu, &rec, "a").await;
    for endpoint in [emu.urls.management.clone(), format!("http://{}", emu.addr)] {
        let api = management(&endpoint).await;
        api.post_to_connection()
            .connection_id(&id)
            .data(Blob::new("héllo"))
            .send()
            .await
            .unwrap();
        assert_eq!(next(&mut ws).await, Message::text("héllo"), "{endpoint}");
        api.post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![0xffu8, 0, 1]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            next(&mut ws).await,
            Message::binary(vec![0xffu8, 0, 1]),
            "not UTF-8: binary"
        );
    }
}

#[tokio::test]
async fn unknown_and_closed_connections_are_gone() {
    let (emu, rec) = probe(|c| c).await;
    let api = management(&emu.urls.management).await;
    let err = api
        .post_to_connection()
        .connection_id("bm90LWEtY29ubg=")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{err:?}"
    );
    let (ws, id) = connected(&emu, &rec, "a").await;
    drop(ws);
    rec.wait_for("disconnect", |e| {
        e["requestContext"]["eventType"] == "DISCONNECT"
    })
    .await;
    let err = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
    let err = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
    let err = api
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
}

#[tokio::test]
async fn a_post_before_connect_finishes_is_gone() {
    // $connect sleeps; meanwhile the connection id exists only in events.
    let (emu, rec) = probe(|c| c.integration_timeout(std::time::Duration::from_secs(2))).await;
    let url = format!("ws://{}/test?key=a&slow=1", emu.addr);
    let pending = tokio::spawn(async move { try_connect(&url, None).await.err() });
    let event = rec
        .wait_for("CONNECT", |e| {
            e["requestContext"]["routeKey"] == "$connect" && e.get("type").is_none()
        })
        .await;
    let id = event["requestContext"]["connectionId"].as_str().unwrap();
    let api = management(&emu.urls.management).await;
    let err = api
        .post_to_connection()
        .connection_id(id)
        .data(Blob::new("early"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
    assert_eq!(pending.await.unwrap(), Some(502), "then $connect times out");
}

#[tokio::test]
async fn a_post_over_128_kb_is_payload_too_large() {
    let (emu, rec) = probe(|c| c).await;
    let (mut ws, id) = connected(&emu, &rec, "a").await;
    let api = management(&emu.urls.management).await;
    let err = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'x'; 128 * 1024 + 1]))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{err:?}"
    );
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'y'; 128 * 1024]))
        .send()
        .await
        .unwrap();
    match next(&mut ws).await {
        Message::Text(t) => assert_eq!(t.len(), 128 * 1024),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn get_describes_the_connection() {
    let (emu, rec) = probe(|c| c).await;
    let (_ws, id) = connected(&emu, &rec, "a").await;
    let api = management(&emu.urls.management).await;
    let out = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let connected_at = out.connected_at().unwrap().to_millis().unwrap();
    let last_active = out.last_active_at().unwrap().to_millis().unwrap();
    assert!(last_active >= connected_at);
    assert_eq!(
        out.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );
    assert!(out.identity().and_then(|i| i.user_agent()).is_some());
}

#[tokio::test]
async fn delete_closes_with_1000_and_runs_disconnect() {
    let (emu, rec) = probe(|c| c).await;
    let (mut ws, id) = connected(&emu, &rec, "a").await;
    let api = management(&emu.urls.management).await;
    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(closed(&mut ws).await.0, 1000);
    let e = rec
        .wait_for("disconnect", |e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        })
        .await;
    assert_eq!(e["requestContext"]["disconnectStatusCode"], 1000);
}

#[tokio::test]
async fn malformed_ids_and_other_methods_are_refused() {
    let (emu, _) = probe(|c| c).await;
    let http = reqwest::Client::new();
    let base = &emu.urls.management;
    for bad in ["", "has%20space", "semi%3Bcolon", &"a".repeat(200)] {
        let r = http
            .post(format!("{base}/@connections/{bad}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let r = http
        .put(format!("{base}/@connections/abc="))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["x-amzn-errortype"], "MethodNotAllowedException");
    let r = http
        .post(format!("{base}/@connections/abc="))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn a_client_that_does_not_read_gets_429_and_others_are_unaffected() {
    let (emu, rec) = probe(|c| c.outbound_queue(4)).await;
    let (_stalled, id) = connected(&emu, &rec, "stalled").await;
    let (mut healthy, healthy_id) = connected(&emu, &rec, "healthy").await;
    let api = management(&emu.urls.management).await;
    // The stalled client never reads: kernel buffers fill, then the queue.
    let chunk = Blob::new(vec![b'z'; 120 * 1024]);
    let mut throttled = false;
    for _ in 0..400 {
        match api
            .post_to_connection()
            .connection_id(&id)
            .data(chunk.clone())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_limit_exceeded_exception()) =>
            {
                throttled = true;
                break;
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert!(throttled, "the bounded queue pushed back with 429");
    api.post_to_connection()
        .connection_id(&healthy_id)
        .data(Blob::new("still fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(next(&mut healthy).await, Message::text("still fine"));
}

/// Posts are served before the router, with the id's escapes decoded as the
/// router's `Path` decodes them (the SDKs send `=` as `%3D`); a path with
/// any other escape, or another stage, goes through the router. Both
/// answer alike: the same connection gets the frame, another stage is not
/// found, an id of no connection is gone, one that cannot be a
/// connection's is refused.
#[tokio::test]
async fn posts_answer_alike_with_and_without_the_router() {
    let (emu, rec) = probe(|c| c).await;
    let (mut ws, id) = connected(&emu, &rec, "paths").await;
    let http = reqwest::Client::new();
    let sdk_style = id.replace('=', "%3D");
    assert_ne!(
        sdk_style, id,
        "emulator ids end in '=', which the SDKs escape"
    );
    let every_byte: String = id.bytes().map(|b| format!("%{b:02x}")).collect();
    let root = format!("http://{}", emu.addr);
    for (path, frame) in [
        (format!("/test/@connections/{id}"), "stage, plain"),
        (format!("/@connections/{id}"), "no stage, plain"),
        (
            format!("/test/@connections/{sdk_style}"),
            "stage, as the SDKs send it",
        ),
        (
            format!("/@connections/{sdk_style}"),
            "no stage, as the SDKs send it",
        ),
        (
            format!("/test/@connections/{every_byte}"),
            "every byte escaped",
        ),
    ] {
        let r = http
            .post(format!("{root}{path}"))
            .body(frame)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(next(&mut ws).await, Message::text(frame), "{path}");
    }
    for (path, status) in [
        (format!("/other/@connections/{id}"), 404),
        (format!("/other/@connections/{sdk_style}"), 404),
        (format!("/test/@connections/{id}/more"), 410),
        (format!("/test/@connections/{id}%20"), 400),
        (format!("/@connections/{id}%C3%A9"), 400),
    ] {
        let r = http
            .post(format!("{root}{path}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    silent(&mut ws, 200).await;
}
