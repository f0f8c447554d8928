//! What a user's function sees, checked field by field against AWS's
//! documentation, in both of the emulator's interpreted runtimes: echo
//! functions in Node.js and Python (tests/fixtures/echo) record the
//! REQUEST authorizer's event, `$connect`'s, a message's and
//! `$disconnect`'s. Fields as API Gateway Developer Guide, "Control access
//! to WebSocket APIs with AWS Lambda REQUEST authorizers" (the authorizer's
//! input) and "WebSocket API mapping template reference for API Gateway"
//! (the `$context` variables of a WebSocket request) list them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::emulator::*;
use futures::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Waits for a file the echo functions write, and reads it.
async fn recorded(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} was not written within {WAIT:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A WebSocket handshake written byte for byte, so that header names go
/// out spelled as here (an `http::HeaderMap` would lower-case them).
async fn connect_as_sent(addr: std::net::SocketAddr, path: &str, headers: &str) -> Ws {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "closed during the handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    WebSocketStream::from_raw_socket(MaybeTlsStream::Plain(tcp), Role::Client, None).await
}

/// Fields every WebSocket event's `requestContext` has.
fn assert_context(ctx: &Value, route: &str, event_type: &str, api_id: &str) {
    assert_eq!(ctx["routeKey"], route, "{ctx:#}");
    assert_eq!(ctx["eventType"], event_type);
    assert_eq!(ctx["apiId"], api_id);
    assert_eq!(ctx["stage"], "echo");
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    for field in [
        "connectionId",
        "domainName",
        "requestId",
        "extendedRequestId",
    ] {
        assert!(
            ctx[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {ctx:#}"
        );
    }
    for field in ["connectedAt", "requestTimeEpoch"] {
        assert!(
            ctx[field].as_i64().is_some_and(|t| t > 1_600_000_000_000),
            "{field}: {ctx:#}"
        );
    }
    // "requestTime": CLF-formatted, e.g. 06/Dec/2026:04:50:06 +0000.
    let time = ctx["requestTime"].as_str().unwrap();
    assert!(
        time.len() == 26 && time.ends_with(" +0000") && &time[2..3] == "/",
        "{time}"
    );
}

/// What a user's function finds in its environment: Lambda's reserved
/// variables and the template's, nothing of Roomcast's.
fn assert_env(env: &Value, function: &str, region: &str) {
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], function);
    assert_eq!(env["AWS_REGION"], region);
    assert_eq!(env["TEMPLATE_VARIABLE"], "from-the-template");
    let ours: Vec<&String> = env
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("ROOMCAST_") || k.starts_with("RUST_"))
        .collect();
    assert!(ours.is_empty(), "{function} got {ours:?}");
}

#[tokio::test]
async fn node_and_python_functions_see_every_documented_field() {
    let dir: PathBuf = std::env::temp_dir().join(format!("roomcast-echo-{}", uuid::Uuid::new_v4()));
    let emu = start(
        config("tests/fixtures/echo/template.yaml")
            .python(python())
            .parameter("RecordDir", dir.display().to_string()),
    )
    .await;
    let api_id = roomcast_emulator::template::api_id_of("Api");
    let mut ws = tokio::time::timeout(
        WAIT,
        connect_as_sent(
            emu.addr,
            "/echo?q=1&q=2&single=x",
            "HeaderAuth1: secret\r\n",
        ),
    )
    .await
    .expect("connect in time");

    // A message to the Node function's route: its answer is its event.
    send(&mut ws, json!({"action": "node", "n": 1})).await;
    let node = recv(&mut ws).await;
    let message = &node["event"];
    let id = message["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_context(&message["requestContext"], "node", "MESSAGE", &api_id);
    assert!(message["requestContext"]["messageId"].is_string());
    assert_eq!(
        message["body"],
        json!({"action": "node", "n": 1}).to_string()
    );
    assert_eq!(message["isBase64Encoded"], false);
    assert_eq!(message["stageVariables"]["lambdaAlias"], "live");
    assert_eq!(node["functionName"], "NodeEcho");
    let region = node["env"]["AWS_REGION"].as_str().unwrap().to_owned();
    assert_env(&node["env"], "NodeEcho", &region);
    // Lambda runs nodejs22.x on Node 22, where the AWS SDK's warning about
    // older Nodes never shows; on an older installed Node the emulator
    // turns that warning off (and says so once at start-up).
    let quiet = &node["env"]["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"];
    match crate::cli::node_major() {
        Some(installed) if installed < 22 => assert_eq!(quiet, "true"),
        _ => assert!(quiet.is_null(), "{quiet}"),
    }

    // The authorizer's event (Node).
    let auth = recorded(&dir, &format!("AUTHORIZER-node-{id}.json")).await;
    let a = &auth["event"];
    assert_eq!(a["type"], "REQUEST");
    assert_eq!(
        a["methodArn"],
        format!("arn:aws:execute-api:{region}:000000000000:{api_id}/echo/$connect")
    );
    // Header names as the client sent them.
    assert_eq!(a["headers"]["HeaderAuth1"], "secret", "{:#}", a["headers"]);
    assert_eq!(a["multiValueHeaders"]["HeaderAuth1"], json!(["secret"]));
    assert_eq!(a["queryStringParameters"]["single"], "x");
    assert_eq!(a["multiValueQueryStringParameters"]["q"], json!(["1", "2"]));
    assert_eq!(a["stageVariables"]["lambdaAlias"], "live");
    assert_context(&a["requestContext"], "$connect", "CONNECT", &api_id);

    // $connect's event (Python), with the authorizer's output.
    let connect = recorded(&dir, &format!("CONNECT-python-{id}.json")).await;
    let c = &connect["event"];
    assert_context(&c["requestContext"], "$connect", "CONNECT", &api_id);
    assert_eq!(
        c["requestContext"]["authorizer"]["principalId"],
        "echo-user"
    );
    assert_eq!(c["requestContext"]["authorizer"]["who"], "echo-user");
    assert_eq!(c["headers"]["HeaderAuth1"], "secret");
    assert_eq!(c["queryStringParameters"]["single"], "x");
    assert_eq!(c["isBase64Encoded"], false);
    assert_env(&connect["env"], "PythonEcho", &region);

    // A frame that is not JSON goes to $default (Python).
    ws.send(Message::text("not json")).await.unwrap();
    let py = recv(&mut ws).await;
    let m = &py["event"];
    assert_context(&m["requestContext"], "$default", "MESSAGE", &api_id);
    assert_eq!(m["requestContext"]["connectionId"], id.as_str());
    assert_eq!(m["body"], "not json");
    assert_eq!(py["functionName"], "PythonEcho");

    // Callbacks over TLS, from each runtime, to `https://{domainName}/{stage}`
    // and to the API's `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`,
    // each with its runtime's own HTTPS client.
    send(&mut ws, json!({"action": "node", "callback": true})).await;
    assert_eq!(next(&mut ws).await, Message::text("node via domainName"));
    assert_eq!(next(&mut ws).await, Message::text("node via execute-api"));
    ws.send(Message::text("python-callback")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("python via domainName"));
    assert_eq!(next(&mut ws).await, Message::text("python via execute-api"));

    // $disconnect (Node), after a normal close by the client.
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let gone = recorded(&dir, &format!("DISCONNECT-node-{id}.json")).await;
    let d = &gone["event"]["requestContext"];
    assert_context(d, "$disconnect", "DISCONNECT", &api_id);
    assert_eq!(d["disconnectStatusCode"], 1000);
    assert!(d["disconnectReason"].is_string());
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `$connect` function that answers a non-2xx status refuses the
/// connection with that status (API Gateway Developer Guide, "Use the
/// $connect route": the connection is rejected unless `$connect` succeeds),
/// and the developer reads why in `roomcast dev`'s log: the function, the
/// route, the connection, the request id and the first lines of the body.
#[tokio::test]
async fn a_refused_connect_says_why_in_the_log() {
    let dir = std::env::temp_dir().join(format!("roomcast-echo-{}", uuid::Uuid::new_v4()));
    let mut dev = DevProcess::start(&[
        "--template".into(),
        repo_path("tests/fixtures/echo/template.yaml").into(),
        "--no-tls".into(),
        "--python".into(),
        python().into(),
        "--static-dir".into(),
        repo_path("tests/fixtures").into(),
        "--parameter-overrides".into(),
        format!("RecordDir={}", dir.display()).into(),
    ]);
    let port = dev.port;
    let url = format!("ws://127.0.0.1:{port}/echo?refuse=1");
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("HeaderAuth1", "x".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, dev.lines.recv())
            .await
            .expect("a log line for the refused $connect")
            .expect("stderr open");
        if line.contains("$connect refused the connection") {
            for field in [
                "PythonEcho",
                "route=\"$connect\"",
                "connection_id=",
                "request_id=",
                "status=403",
                "no entry for you",
            ] {
                assert!(line.contains(field), "{field} missing from: {line}");
            }
            break;
        }
    }
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}
