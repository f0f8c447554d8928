//! The key set's transport: redirects, errors, limits and proxies, against
//! scripted servers on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{JwksCache, redirect};
use roomcast_core::auth::AuthError;

const JWKS: &str = include_str!("../jwt/jwks.json");

/// A server on 127.0.0.1 that answers its n-th request with
/// `reply(own address, n)` and closes; returns its address and the request
/// lines it saw. Stops with the test.
async fn scripted(
    reply: impl Fn(SocketAddr, usize) -> String + Send + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let lines = seen.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            lines
                .lock()
                .unwrap()
                .push(text.lines().next().unwrap_or_default().to_owned());
            let _ = sock.write_all(reply(addr, n).as_bytes()).await;
            n += 1;
        }
    });
    (addr, seen)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn moved(status: u16, location: &str) -> String {
    format!(
        "HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn cache(url: &str) -> JwksCache {
    JwksCache::new(url, Duration::from_secs(600)).with_proxy(ProxyConfig::disabled())
}

#[tokio::test]
async fn redirects_are_followed_by_path_and_by_url() {
    let (addr, seen) = scripted(|addr, n| match n {
        0 => moved(302, "/second"),
        1 => moved(301, &format!("http://{addr}/third")),
        _ => ok(JWKS),
    })
    .await;
    let keys = cache(&format!("http://{addr}/first"));
    assert!(keys.key_for(Some("rsa-1")).await.is_ok());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /first HTTP/1.1",
            "GET /second HTTP/1.1",
            "GET /third HTTP/1.1"
        ]
    );
}

#[tokio::test]
async fn endless_redirects_error_answers_and_junk_are_unavailable() {
    let (addr, seen) = scripted(|_, _| moved(307, "/again")).await;
    assert_unavailable(addr).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        6,
        "the first request and five redirects"
    );

    for reply in [
        "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
        ok("<html>not keys</html>"),
        moved(302, "ftp://elsewhere/keys"),
        // Valid JSON, but over the 1 MiB a key set may take.
        ok(&format!("{JWKS}{}", " ".repeat(1024 * 1024))),
    ] {
        let (addr, _) = scripted(move |_, _| reply.clone()).await;
        assert_unavailable(addr).await;
    }
}

/// Asking the server at `addr` for a key is refused as `KeysUnavailable`.
async fn assert_unavailable(addr: SocketAddr) {
    let denied = cache(&format!("http://{addr}/jwks"))
        .key_for(Some("rsa-1"))
        .await;
    assert!(
        matches!(denied, Err(AuthError::KeysUnavailable(_))),
        "{denied:?}"
    );
}

#[tokio::test]
async fn the_key_set_comes_through_the_proxy() {
    // A host that does not resolve: only the proxy can answer for it.
    let (proxy, seen) = scripted(|_, _| ok(JWKS)).await;
    let keys = JwksCache::new("http://jwks.invalid/keys", Duration::from_secs(600))
        .with_proxy(ProxyConfig::http(format!("http://{proxy}")).unwrap());
    assert!(keys.key_for(Some("rsa-1")).await.is_ok());
    assert_eq!(
        *seen.lock().unwrap(),
        ["GET http://jwks.invalid/keys HTTP/1.1"],
        "absolute-form, as a proxy expects"
    );
}

#[test]
fn redirects_never_step_down_to_plain_http() {
    let from = "https://idp.example.com/a/jwks";
    assert_eq!(
        redirect(from, "/b/jwks").as_deref(),
        Some("https://idp.example.com/b/jwks")
    );
    assert_eq!(
        redirect(from, "https://keys.example.net/jwks").as_deref(),
        Some("https://keys.example.net/jwks")
    );
    assert_eq!(redirect(from, "http://idp.example.com/jwks"), None);
    assert_eq!(redirect(from, "//evil.example/jwks"), None);
    assert_eq!(redirect(from, "jwks2"), None);
    assert_eq!(
        redirect("http://127.0.0.1:8/x", "http://127.0.0.1:9/y").as_deref(),
        Some("http://127.0.0.1:9/y")
    );
    assert_eq!(
        redirect("http://127.0.0.1:8", "/y").as_deref(),
        Some("http://127.0.0.1:8/y")
    );
}
