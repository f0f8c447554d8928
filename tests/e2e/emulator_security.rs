//! The emulator answers only its developer (docs/security.md): each
//! request a hostile web page in the developer's browser could make is
//! refused over real sockets, and the developer's own tools still work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use common::emulator::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

/// A raw HTTP/1.1 exchange, as a browser would send it (the Host and
/// Origin of the attacker's choosing): the status and the body.
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(WAIT, async {
        // The head, then as many bytes as it announces (the connection may
        // stay open: a refused upgrade is kept alive).
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if out.len() >= end + 4 + length {
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body =
                        String::from_utf8_lossy(&out[end + 4..end + 4 + length]).into_owned();
                    return (status, body);
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the connection closed mid-answer: {}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer in time")
}

fn post(path: &str, host: &str, origin: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// What `fetch(url, {method: "POST", mode: "no-cors", body})` from
/// https://evil.example sends: a simple request with a foreign Origin and
/// `text/plain`, which no preflight stops. Every state-changing endpoint
/// refuses it (OWASP CSRF cheat sheet); before, replay re-ran the publish
/// function with a revoke, and faults, cuts, posts and invocations all
/// answered 2xx.
#[tokio::test]
async fn a_foreign_pages_writes_are_refused() {
    let emu = start(config("template.yaml")).await;
    let (mut ws, id) = {
        let token = dev_token(&emu, "victim").await;
        let mut ws = connect(&format!("{}?token={token}", emu.urls.websocket)).await;
        send(&mut ws, json!({"action": "hello"})).await;
        let w = recv_type(&mut ws, "welcome").await;
        (ws, w["connectionId"].as_str().unwrap().to_owned())
    };
    let host = emu.addr.to_string();
    let evil = "https://evil.example";
    let revoke = json!({"function": "PublishFunction", "event": {"op": "revoke", "user": "victim", "until": 4_000_000_000_000_i64}}).to_string();
    let escaped = id.replace('=', "%3D");
    for (path, body) in [
        ("/_roomcast/replay", revoke.as_str()),
        ("/_roomcast/faults", r#"{"fault":"drop-disconnect"}"#),
        (&*format!("/_roomcast/connections/{escaped}/cut"), "{}"),
        ("/_roomcast/functions/PublishFunction/cold", "{}"),
        (
            "/2015-03-31/functions/PublishFunction/invocations",
            r#"{"room":"lobby","data":"forged"}"#,
        ),
        (&*format!("/prod/@connections/{escaped}"), "forged frame"),
    ] {
        for content_type in ["text/plain", "application/json"] {
            let (status, answer) =
                raw(emu.addr, &post(path, &host, evil, content_type, body)).await;
            assert_eq!(status, 403, "{path} {content_type}: {answer}");
            assert!(
                answer.contains("cross-site request refused"),
                "{path}: {answer}"
            );
        }
    }
    // Fetch Metadata without an Origin (some requests carry only it).
    let (status, _) = raw(
        emu.addr,
        &format!(
            "POST /_roomcast/faults HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    )
    .await;
    assert_eq!(status, 403);
    // Nothing happened: the victim is connected and got no forged frame,
    // and no fault is armed.
    send(&mut ws, json!({"action": "heartbeat", "ref": "alive"})).await;
    let next = recv(&mut ws).await;
    assert_eq!(
        (next["type"].clone(), next["ref"].clone()),
        (json!("pong"), json!("alive")),
        "{next}"
    );
    assert_eq!(dev_api_json(&emu, "faults").await["faults"], json!([]));
    // The emulator's own pages and the SDKs and CLIs (no Origin) still work.
    let own = format!("http://{host}");
    let (status, answer) = raw(
        emu.addr,
        &post(
            "/_roomcast/faults",
            &host,
            &own,
            "application/json",
            r#"{"fault":"drop-disconnect","count":1}"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let lambda = lambda_client(&emu).await;
    let out = invoke(
        &lambda,
        "PublishFunction",
        &json!({"room": "lobby", "data": "ok"}),
    )
    .await;
    assert_eq!(out.status_code(), 200);
}

/// `/_roomcast/` takes JSON only: a page's simple request cannot carry it
/// without a preflight the emulator never answers.
#[tokio::test]
async fn the_emulators_api_takes_json_only() {
    let emu = start(config("template.yaml")).await;
    let host = emu.addr.to_string();
    let own = format!("http://{host}");
    let (status, answer) = raw(
        emu.addr,
        &post(
            "/_roomcast/faults",
            &host,
            &own,
            "text/plain",
            r#"{"fault":"drop-disconnect"}"#,
        ),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
}

/// DNS rebinding: a page at http://rebind.evil.example:PORT whose name
/// now resolves to 127.0.0.1 is same-origin with its own requests, so the
/// browser would let it read the answers. Before, it read connections,
/// the timeline, rooms, faults, the live stream and a dev token for any
/// user; every request naming a Host the emulator does not serve is
/// refused now, WebSocket upgrades included (Vite's `server.allowedHosts`,
/// CVE-2025-24010).
#[tokio::test]
async fn a_rebound_name_reads_nothing() {
    let emu = start(config("template.yaml")).await;
    let rebound = format!("rebind.evil.example:{}", emu.addr.port());
    for path in [
        "/_roomcast/connections",
        "/_roomcast/timeline",
        "/_roomcast/timeline/stream",
        "/_roomcast/rooms",
        "/_roomcast/faults",
        "/_roomcast/events",
        "/dev/token?user=victim",
        "/",
        "/metrics",
    ] {
        let (status, answer) = raw(emu.addr, &get(path, &rebound)).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(!answer.contains("token\""), "{path}: {answer}");
        assert!(answer.contains("--allowed-host"), "{path}: {answer}");
    }
    let token = dev_token(&emu, "victim").await;
    let upgrade = format!(
        "GET /prod?token={token} HTTP/1.1\r\nHost: {rebound}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert_eq!(raw(emu.addr, &upgrade).await.0, 403);
    // The names the developer uses are served.
    for host in [
        emu.addr.to_string(),
        format!("localhost:{}", emu.addr.port()),
        format!("app.localhost:{}", emu.addr.port()),
    ] {
        let (status, body) = raw(emu.addr, &get("/healthz", &host)).await;
        assert_eq!(status, 200, "{host}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "ok"
        );
    }
}

/// `--allowed-host` adds a name the developer owns.
#[tokio::test]
async fn an_allowed_host_is_served() {
    let emu = start(config("template.yaml").allowed_host("roomcast.test")).await;
    let host = format!("roomcast.test:{}", emu.addr.port());
    assert_eq!(raw(emu.addr, &get("/healthz", &host)).await.0, 200);
    assert_eq!(
        raw(
            emu.addr,
            &get("/healthz", &format!("other.test:{}", emu.addr.port()))
        )
        .await
        .0,
        403
    );
}

/// Tokens never reach the timeline: the authorizer's and `$connect`'s
/// events are kept and streamed with `token` and the credential headers
/// redacted (before, `/_roomcast/timeline` served every user's JWT), an
/// `auth` frame's token too; and a replay of a kept, redacted event still
/// runs with the original token.
#[tokio::test]
async fn tokens_are_kept_off_the_timeline_and_replays_still_work() {
    let emu = start(config("template.yaml")).await;
    let mut live = watch(&emu).await;
    let token = dev_token(&emu, "alice").await;
    let url = format!("{}?token={token}", emu.urls.websocket);
    let (mut ws, _) = try_connect(&url, Some(&format!("roomcast, {token}")))
        .await
        .expect("upgrade");
    send(
        &mut ws,
        json!({"action": "auth", "token": token, "ref": "a"}),
    )
    .await;
    recv_type(&mut ws, "authed").await;
    // The live stream saw the frame and the invocations: read it until
    // the auth frame's invocation is in.
    let mut streamed = String::new();
    tokio::time::timeout(WAIT, async {
        while !streamed.contains("\"route\":\"$default\"") {
            let chunk = live.chunk().await.unwrap().unwrap();
            streamed.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the stream carries the invocations");
    let kept = dev_api(&emu, reqwest::Method::GET, "timeline")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, text) in [("timeline", &kept), ("live stream", &streamed)] {
        if let Some(at) = text.find(&token) {
            panic!(
                "{name} holds the token: …{}…",
                &text[at.saturating_sub(300)..at]
            );
        }
        assert!(text.contains("[redacted]"), "{name}");
    }
    // Replay the authorizer's invocation as the timeline shows it.
    let entries: Value = serde_json::from_str(&kept).unwrap();
    let authorizer = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "invoke" && e["route"] == "authorizer")
        .expect("the authorizer's invocation is kept")
        .clone();
    assert_eq!(
        authorizer["event"]["queryStringParameters"]["token"],
        "[redacted]"
    );
    let replayed: Value = dev_api(&emu, reqwest::Method::POST, "replay")
        .json(&json!({"function": authorizer["function"], "event": authorizer["event"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        replayed["result"]["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{replayed}"
    );
}
