//! The emulator reproduces API Gateway's WebSocket behaviour (DESIGN.md §2).
//! One test per behaviour, with real WebSocket clients over TCP and probe
//! handlers (tests/fixtures/probe-template.yaml) that record every event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::emulator::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn ws_url(emu: &roomcast_emulator::RunningEmulator, path: &str, key: &str) -> String {
    format!("ws://{}{path}?key={key}", emu.addr)
}

// ---- endpoints and routing ---------------------------------------------------

#[tokio::test]
async fn clients_connect_at_the_stage_path_and_at_root() {
    let (emu, _) = probe(|c| c).await;
    for path in ["/test", "/test/", "/"] {
        let mut ws = connect(&ws_url(&emu, path, "alice")).await;
        send(&mut ws, json!({"action": "echo"})).await;
        assert_eq!(
            recv(&mut ws).await["requestContext"]["routeKey"],
            "echo",
            "{path}"
        );
    }
    assert_eq!(
        try_connect(&ws_url(&emu, "/other", "alice"), None)
            .await
            .err(),
        Some(404)
    );
}

#[tokio::test]
async fn routes_are_selected_by_the_action_field() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "alice")).await;
    send(&mut ws, json!({"action": "echo", "n": 1})).await;
    let event = recv(&mut ws).await;
    assert_eq!(event["requestContext"]["routeKey"], "echo");
    assert_eq!(event["body"], json!({"action": "echo", "n": 1}).to_string());
    send(&mut ws, json!({"action": "silent"})).await;
    rec.wait_for("the silent route", |e| {
        e["requestContext"]["routeKey"] == "silent"
    })
    .await;
}

#[tokio::test]
async fn no_matching_route_and_no_default_is_forbidden_and_the_connection_stays_open() {
    let (emu, _) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "alice")).await;
    for frame in [
        Message::text(json!({"action": "nope"}).to_string()),
        Message::text("not json"),
        // Stringified to "6", which no route has (the probe template has "5").
        Message::text(json!({"action": 6}).to_string()),
        Message::text(json!({"no_action": true}).to_string()),
    ] {
        ws.send(frame.clone()).await.unwrap();
        let reply = recv(&mut ws).await;
        assert_eq!(reply["message"], "Forbidden", "{frame:?}");
        assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());
    }
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(
        recv(&mut ws).await["requestContext"]["routeKey"],
        "echo",
        "still open"
    );
}

#[tokio::test]
async fn non_json_and_unknown_keys_go_to_default() {
    let rec = Recorder::default();
    let emu = start(with_probes(
        config("tests/fixtures/minimal-template.yaml"),
        &rec,
    ))
    .await;
    let mut ws = connect(&format!("ws://{}/dev", emu.addr)).await;
    send(&mut ws, json!({"action": "whatever"})).await;
    assert_eq!(
        recv(&mut ws).await["requestContext"]["routeKey"],
        "$default"
    );
    ws.send(Message::text("plain text")).await.unwrap();
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["body"].clone(), e["isBase64Encoded"].clone()),
        (json!("plain text"), json!(false))
    );
}

/// AWS, "Binary media types for WebSocket APIs in API Gateway": "API
/// Gateway WebSocket APIs don't currently support binary frames in incoming
/// message payloads. If a client app sends a binary frame, API Gateway
/// rejects it and disconnects the client with code 1003." No route runs;
/// `$disconnect` does, with that code.
#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003_and_invokes_no_route() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "alice")).await;
    send(&mut ws, json!({"action": "echo"})).await;
    let id = recv(&mut ws).await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen_before = rec.events().len();
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let code = match tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a close in time")
    {
        Some(Ok(Message::Close(Some(f)))) => u16::from(f.code),
        Some(Ok(other)) => panic!("no frame may answer a binary frame: {other:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    };
    assert_eq!(code, 1003);
    let disconnect = rec
        .wait_for("$disconnect", |e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        })
        .await;
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1003);
    let after: Vec<Value> = rec.events()[seen_before..].to_vec();
    assert_eq!(
        after.len(),
        1,
        "no route ran for the binary frame: {after:#?}"
    );
}

// ---- $connect and the handshake --------------------------------------------------

#[tokio::test]
async fn the_connect_route_is_optional() {
    let rec = Recorder::default();
    let emu = start(with_probes(
        config("tests/fixtures/minimal-template.yaml"),
        &rec,
    ))
    .await;
    let mut ws = connect(&format!("ws://{}/dev", emu.addr)).await;
    send(&mut ws, json!({"action": "x"})).await;
    assert!(recv(&mut ws).await["requestContext"]["connectionId"].is_string());
    assert!(rec.of_type("CONNECT").is_empty());
}

#[tokio::test]
async fn a_non_2xx_connect_status_is_the_upgrade_status() {
    let (emu, rec) = probe(|c| c).await;
    for status in [400u16, 403, 418, 500] {
        let url = format!("{}&status={status}", ws_url(&emu, "/test", "alice"));
        assert_eq!(try_connect(&url, None).await.err(), Some(status));
    }
    let connects = rec
        .of_type("CONNECT")
        .into_iter()
        .filter(|e| e.get("type").is_none())
        .count();
    assert_eq!(
        connects, 4,
        "one $connect invocation per attempt (authorizer events excluded)"
    );
}

#[tokio::test]
async fn a_connect_handler_error_or_timeout_fails_the_upgrade_with_502() {
    let (emu, _) = probe(|c| c.integration_timeout(Duration::from_millis(500))).await;
    let fail = format!("{}&fail=1", ws_url(&emu, "/test", "alice"));
    assert_eq!(try_connect(&fail, None).await.err(), Some(502));
    let slow = format!("{}&slow=1", ws_url(&emu, "/test", "alice"));
    assert_eq!(try_connect(&slow, None).await.err(), Some(502));
}

#[tokio::test]
async fn connect_gets_query_string_and_headers_and_later_events_get_neither() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&format!(
        "{}&x=1&x=2&y=%C3%A9",
        ws_url(&emu, "/test", "alice")
    ))
    .await;
    let connect = rec
        .wait_for("CONNECT", |e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    assert_eq!(connect["queryStringParameters"]["x"], "2");
    assert_eq!(
        connect["multiValueQueryStringParameters"]["x"],
        json!(["1", "2"])
    );
    assert_eq!(connect["queryStringParameters"]["y"], "é");
    // As tungstenite spells them: header names are passed as sent.
    assert!(
        connect["headers"]["Host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        connect["multiValueHeaders"]["Sec-WebSocket-Version"],
        json!(["13"])
    );
    send(&mut ws, json!({"action": "echo"})).await;
    let message = recv(&mut ws).await;
    assert!(
        message.get("headers").is_none() && message.get("queryStringParameters").is_none(),
        "{message}"
    );
}

/// DESIGN.md §2: headers reach `$connect` and the authorizer "as the client
/// sent them". AWS's WebSocket tutorial authorizer reads
/// `event.headers.HeaderAuth1` ("Create a WebSocket API with a REQUEST
/// authorizer", the `websocket-api-chat-app-tutorial`'s authorizer), which
/// only works if API Gateway keeps the client's spelling; its event
/// examples ("API Gateway Lambda authorizer input", WebSocket) show
/// `Sec-WebSocket-Key`, `Host` and so on as browsers send them.
#[tokio::test]
async fn header_names_reach_connect_and_the_authorizer_as_the_client_spelled_them() {
    let (emu, rec) = probe(|c| c).await;
    let mut s = tokio::net::TcpStream::connect(emu.addr).await.unwrap();
    let request = format!(
        "GET /test?key=spelling HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         HeaderAuth1: headerValue1\r\nx-lower: v\r\n\r\n",
        emu.addr
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    for kind in ["authorizer", "$connect"] {
        let event = rec
            .wait_for(kind, |e| {
                e["requestContext"]["eventType"] == "CONNECT"
                    && e["queryStringParameters"]["key"] == "spelling"
                    && (e.get("type").is_some() == (kind == "authorizer"))
            })
            .await;
        let headers = &event["headers"];
        assert_eq!(headers["HeaderAuth1"], "headerValue1", "{kind}: {headers}");
        assert_eq!(headers["Sec-WebSocket-Version"], "13", "{kind}");
        assert_eq!(
            headers["x-lower"], "v",
            "{kind}: lower case stays lower case"
        );
        assert!(headers.get("headerauth1").is_none(), "{kind}: not folded");
        assert_eq!(
            event["multiValueHeaders"]["HeaderAuth1"],
            json!(["headerValue1"]),
            "{kind}"
        );
    }
}

/// The Stage's `StageVariables` reach the REQUEST authorizer ("Create stages
/// for WebSocket APIs in API Gateway": key-value pairs defined for a stage;
/// the authorizer input's `stageVariables`, which AWS's sample authorizer
/// reads) and every proxy event. One stack has one region and account: the
/// `methodArn`, `AWS::Region` in the template and the functions'
/// `AWS_REGION` agree.
#[tokio::test]
async fn stage_variables_and_one_region_reach_the_authorizer_and_every_event() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "stagevars")).await;
    send(&mut ws, json!({"action": "echo"})).await;
    let message = recv(&mut ws).await;
    let region = roomcast_emulator::local_sdk_config()
        .await
        .region()
        .map(ToString::to_string)
        .unwrap();
    let expected = json!({"mode": "probe", "stageRef": "test", "region": region});
    assert_eq!(message["stageVariables"], expected, "MESSAGE");
    let authorizer = rec
        .wait_for("authorizer", |e| {
            e.get("type").is_some() && e["queryStringParameters"]["key"] == "stagevars"
        })
        .await;
    assert_eq!(authorizer["stageVariables"], expected, "authorizer");
    let arn = authorizer["methodArn"].as_str().unwrap();
    assert!(
        arn.starts_with(&format!("arn:aws:execute-api:{region}:000000000000:")),
        "{arn}"
    );
    assert!(arn.ends_with("/test/$connect"), "{arn}");
    let connect = rec
        .wait_for("$connect", |e| {
            e.get("type").is_none()
                && e["requestContext"]["eventType"] == "CONNECT"
                && e["queryStringParameters"]["key"] == "stagevars"
        })
        .await;
    assert_eq!(connect["stageVariables"], expected, "CONNECT");
}

/// "Control access to WebSocket APIs with AWS Lambda REQUEST authorizers":
/// API Gateway applies the returned policy to this `$connect`'s method
/// ARN. A policy that allows only another resource is a 403.
#[tokio::test]
async fn an_allow_for_another_resource_is_forbidden() {
    let (emu, _rec) = probe(|c| c).await;
    assert_eq!(
        try_connect(&ws_url(&emu, "/test", "elsewhere"), None)
            .await
            .err(),
        Some(403)
    );
    assert!(
        try_connect(&ws_url(&emu, "/test", "fine"), None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_subprotocol_is_echoed_only_when_connect_sets_it() {
    let (emu, _) = probe(|c| c).await;
    let chosen = format!("{}&protocol=chat", ws_url(&emu, "/test", "alice"));
    let (_ws, headers) = try_connect(&chosen, Some("chat, other"))
        .await
        .expect("upgrade");
    assert_eq!(headers.get("sec-websocket-protocol").unwrap(), "chat");
    let (_ws, headers) = try_connect(&ws_url(&emu, "/test", "alice"), None)
        .await
        .expect("upgrade");
    assert!(headers.get("sec-websocket-protocol").is_none());
    // A client that offered protocols and got none back refuses the socket,
    // as browsers do: the same outcome as on AWS.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url(&emu, "/test", "alice"),
    )
    .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
    let raw = tokio_tungstenite::connect_async(req).await;
    assert!(raw.is_err(), "no protocol was echoed");
}

// ---- the REQUEST authorizer ------------------------------------------------------------

#[tokio::test]
async fn a_missing_identity_source_is_401_without_invoking_the_authorizer() {
    let (emu, rec) = probe(|c| c).await;
    for url in [
        format!("ws://{}/test", emu.addr),
        format!("ws://{}/test?key=", emu.addr),
    ] {
        assert_eq!(try_connect(&url, None).await.err(), Some(401), "{url}");
    }
    assert!(
        rec.events().is_empty(),
        "nothing was invoked: {:?}",
        rec.events()
    );
}

#[tokio::test]
async fn deny_is_403_and_an_authorizer_error_is_500_or_401() {
    let (emu, rec) = probe(|c| c).await;
    assert_eq!(
        try_connect(&ws_url(&emu, "/test", "deny"), None)
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        try_connect(&ws_url(&emu, "/test", "error"), None)
            .await
            .err(),
        Some(500)
    );
    assert_eq!(
        try_connect(&ws_url(&emu, "/test", "unauthorized"), None)
            .await
            .err(),
        Some(401)
    );
    let connects = rec
        .of_type("CONNECT")
        .into_iter()
        .filter(|e| e.get("type").is_none())
        .count();
    assert_eq!(
        connects, 0,
        "$connect never runs after the authorizer refuses"
    );
}

#[tokio::test]
async fn the_authorizer_context_reaches_every_later_event() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "carol")).await;
    let auth_event = rec
        .wait_for("authorizer event", |e| e["type"] == "REQUEST")
        .await;
    assert!(
        auth_event["methodArn"]
            .as_str()
            .unwrap()
            .ends_with("/test/$connect")
    );
    assert_eq!(auth_event["queryStringParameters"]["key"], "carol");
    send(&mut ws, json!({"action": "echo"})).await;
    let message = recv(&mut ws).await;
    let want = json!({"principalId": "carol", "userId": "carol", "role": "tester", "level": 3, "integrationLatency": 0});
    assert_eq!(message["requestContext"]["authorizer"], want);
    ws.close(None).await.unwrap();
    let disconnect = rec
        .wait_for("DISCONNECT", |e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
        })
        .await;
    assert_eq!(disconnect["requestContext"]["authorizer"], want);
    let connect = rec.of_type("CONNECT").pop().unwrap();
    assert_eq!(connect["requestContext"]["authorizer"], want);
}

// ---- events ----------------------------------------------------------------------------

#[tokio::test]
async fn events_carry_every_request_context_field() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "dave")).await;
    send(&mut ws, json!({"action": "echo"})).await;
    let message = recv(&mut ws).await;
    ws.close(None).await.unwrap();
    let disconnect = rec
        .wait_for("DISCONNECT", |e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
        })
        .await;
    let connect = rec.of_type("CONNECT").pop().unwrap();
    let common = [
        "routeKey",
        "eventType",
        "connectionId",
        "connectedAt",
        "requestTimeEpoch",
        "requestTime",
        "requestId",
        "extendedRequestId",
        "domainName",
        "stage",
        "apiId",
        "messageDirection",
        "identity",
    ];
    for (event, kind) in [
        (&connect, "CONNECT"),
        (&message, "MESSAGE"),
        (&disconnect, "DISCONNECT"),
    ] {
        let ctx = &event["requestContext"];
        for field in common {
            assert!(
                !ctx[field].is_null(),
                "{kind} lacks requestContext.{field}: {ctx}"
            );
        }
        assert_eq!(ctx["eventType"], kind);
        assert_eq!(ctx["messageDirection"], "IN");
        assert_eq!(ctx["stage"], "test");
        assert!(ctx["connectedAt"].is_i64() && ctx["requestTimeEpoch"].is_i64());
        assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
        assert!(
            event.get("isBase64Encoded").is_some(),
            "{kind} lacks isBase64Encoded"
        );
        assert_eq!(
            ctx["connectionId"],
            connect["requestContext"]["connectionId"]
        );
        assert_eq!(ctx["connectedAt"], connect["requestContext"]["connectedAt"]);
    }
    assert!(
        message["requestContext"]["messageId"].is_string(),
        "MESSAGE has a messageId"
    );
    assert!(connect["requestContext"].get("messageId").is_none());
    let time = connect["requestContext"]["requestTime"].as_str().unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
}

#[tokio::test]
async fn disconnect_carries_the_clients_close_code_and_reason() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye now".into(),
    }))
    .await
    .unwrap();
    let e = rec
        .wait_for("4001", |e| {
            e["requestContext"]["disconnectStatusCode"] == 4001
        })
        .await;
    assert_eq!(e["requestContext"]["disconnectReason"], "bye now");
    let mut ws = connect(&ws_url(&emu, "/test", "b")).await;
    ws.close(None).await.unwrap();
    let e = rec
        .wait_for("1005", |e| {
            e["requestContext"]["disconnectStatusCode"] == 1005
        })
        .await;
    assert_eq!(
        e["requestContext"]["disconnectReason"],
        "Client-side close frame status not set"
    );
}

#[tokio::test]
async fn route_responses_are_sent_only_where_configured() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    send(&mut ws, json!({"action": "silent"})).await;
    rec.wait_for("silent", |e| e["requestContext"]["routeKey"] == "silent")
        .await;
    silent(&mut ws, 300).await;
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "echo");
}

#[tokio::test]
async fn handler_errors_timeouts_and_panics_give_internal_server_error_and_keep_serving() {
    let (emu, _) = probe(|c| c.integration_timeout(Duration::from_millis(400))).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    let mut other = connect(&ws_url(&emu, "/test", "b")).await;
    for action in ["fail", "slow", "panic"] {
        send(&mut ws, json!({"action": action})).await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["message"], "Internal server error", "{action}");
        assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());
    }
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(
        recv(&mut ws).await["requestContext"]["routeKey"],
        "echo",
        "the connection stays open"
    );
    send(&mut other, json!({"action": "echo"})).await;
    assert_eq!(
        recv(&mut other).await["requestContext"]["routeKey"],
        "echo",
        "others are unaffected"
    );
}

// ---- limits -------------------------------------------------------------------------------

#[tokio::test]
async fn a_frame_over_32_kb_closes_with_1009() {
    let (emu, rec) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    ws.send(Message::text("x".repeat(32 * 1024 + 1)))
        .await
        .unwrap();
    assert_eq!(closed(&mut ws).await.0, 1009);
    rec.wait_for("1009 disconnect", |e| {
        e["requestContext"]["disconnectStatusCode"] == 1009
    })
    .await;
}

#[tokio::test]
async fn a_message_over_128_kb_in_small_frames_closes_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let (emu, _) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    let chunk = vec![b'x'; 30 * 1024];
    let frames = 5; // 150 KiB in 30 KiB frames: each frame fits, the message does not
    for i in 0..frames {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(chunk.clone(), opcode, i == frames - 1);
        if ws.send(Message::Frame(frame)).await.is_err() {
            break;
        }
    }
    assert_eq!(closed(&mut ws).await.0, 1009);
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let (emu, _) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    let frame = Frame::message(vec![0xC3, 0x28, b'a'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(closed(&mut ws).await.0, 1007);
}

#[tokio::test]
async fn idle_connections_close_with_1001_and_only_data_frames_count() {
    let (emu, rec) = probe(|c| c.idle_timeout(Duration::from_millis(1200))).await;
    let mut active = connect(&ws_url(&emu, "/test", "active")).await;
    let mut pinger = connect(&ws_url(&emu, "/test", "pinger")).await;
    // 3 × 350 ms stays under the 1.2 s idle timeout for both sockets.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(350)).await;
        send(&mut active, json!({"action": "silent"})).await;
        pinger.send(Message::Ping(vec![1].into())).await.unwrap();
    }
    // The pinger sent only control frames: it timed out; the active one did not.
    assert_eq!(closed(&mut pinger).await, (1001, "Going away".to_owned()));
    let e = rec
        .wait_for("1001", |e| {
            e["requestContext"]["disconnectStatusCode"] == 1001
        })
        .await;
    assert_eq!(e["requestContext"]["disconnectReason"], "Going away");
    send(&mut active, json!({"action": "echo"})).await;
    assert_eq!(
        recv(&mut active).await["requestContext"]["routeKey"],
        "echo"
    );
}

#[tokio::test]
async fn the_maximum_duration_closes_with_1001() {
    let (emu, _) = probe(|c| c.max_connection_duration(Duration::from_millis(700))).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    for _ in 0..3 {
        send(&mut ws, json!({"action": "silent"})).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(closed(&mut ws).await, (1001, "Going away".to_owned()));
}

#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let (emu, _) = probe(|c| c).await;
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Pong(p))) = futures::StreamExt::next(&mut ws).await {
                return p;
            }
        }
    })
    .await
    .expect("a pong");
    assert_eq!(&pong[..], b"hi");
}

// ---- bad input on the upgrade -----------------------------------------------------------------

#[tokio::test]
async fn garbage_upgrade_requests_are_refused_and_the_emulator_keeps_serving() {
    let (emu, _) = probe(|c| c).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /test HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET /test HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 8\r\n\r\n",
        b"\x00\x01\x02\xff\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(emu.addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut buf = vec![0u8; 256];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("an answer").unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 400"), "{garbage:?} → {head:?}");
    }
    let mut ws = connect(&ws_url(&emu, "/test", "a")).await;
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "echo");
}

// ---- shutdown --------------------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_and_runs_disconnect() {
    let (emu, rec) = probe(|c| c).await;
    let mut a = connect(&ws_url(&emu, "/test", "a")).await;
    let mut b = connect(&ws_url(&emu, "/test", "b")).await;
    let addr = emu.addr;
    let stopping = tokio::spawn(emu.shutdown());
    assert_eq!(closed(&mut a).await.0, 1001);
    assert_eq!(closed(&mut b).await.0, 1001);
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown ends")
        .unwrap();
    let disconnects: Vec<Value> = rec.of_type("DISCONNECT");
    assert_eq!(disconnects.len(), 2, "{disconnects:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
