//! The key set's refresh against scripted key servers that serve, fail,
//! hang and rotate: stale keys are served at once while one background
//! fetch runs, fetches are rate-limited whatever triggers them, and no
//! verification waits on a fetch it does not need.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::JwksCache;
use roomcast_core::auth::AuthError;

const JWKS: &str = include_str!("../jwt/jwks.json");
/// A deadlock detector, well under the 5 s a fetch may take: a
/// verification that waited for a hanging key server would miss it.
const PROMPT: Duration = Duration::from_secs(2);

#[derive(Clone)]
enum Mode {
    Serve(String),
    Fail,
    Hang,
}

/// A key server on 127.0.0.1 whose answer the test switches; counts the
/// requests and wakes waiters on each. Hung connections stay open until
/// the test ends.
struct KeyServer {
    url: String,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    hit: Arc<tokio::sync::Notify>,
}

impl KeyServer {
    async fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Mode::Serve(body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let hit = Arc::new(tokio::sync::Notify::new());
        let (m, h, n) = (mode.clone(), hits.clone(), hit.clone());
        tokio::spawn(async move {
            let mut hung = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                n.notify_waiters();
                let mode = m.lock().unwrap().clone();
                let reply = match mode {
                    Mode::Serve(body) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    Mode::Fail => {
                        "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
                    }
                    Mode::Hang => {
                        hung.push(sock);
                        continue;
                    }
                };
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        Self {
            url,
            mode,
            hits,
            hit,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits until the server has seen `n` requests.
    async fn until_hits(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let woken = self.hit.notified();
                if self.hits() >= n {
                    return;
                }
                woken.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the key server saw {} requests, not {n}", self.hits()));
    }
}

/// A clock the test moves.
#[derive(Clone)]
struct Clock {
    base: Instant,
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            offset_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// TTL 600 s, a fetch at most every 30 s, stale for at most 3,600 s.
fn cache(url: &str, clock: &Clock) -> JwksCache {
    let c = clock.clone();
    JwksCache::new(url, Duration::from_secs(600))
        .with_proxy(ProxyConfig::disabled())
        .with_min_refetch(Duration::from_secs(30))
        .with_max_stale(Duration::from_secs(3600))
        .with_clock(move || c.now())
}

/// The fixture's key set with only the keys named.
fn only(kids: &[&str]) -> String {
    let mut set: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| kids.iter().any(|kid| k["kid"] == *kid));
    set.to_string()
}

/// Waits until no refresh is running (its fetch done, its flag down).
async fn settled(keys: &JwksCache) {
    drop(keys.inner.fetching.lock().await);
    tokio::time::timeout(Duration::from_secs(10), async {
        while keys.inner.refreshing.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the refresh never finished");
}

async fn promptly<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PROMPT, f)
        .await
        .expect("a verification waited on the key server")
}

#[tokio::test]
async fn a_cold_start_fetches_once_for_every_concurrent_verification() {
    let server = KeyServer::start(JWKS.into()).await;
    let clock = Clock::new();
    let keys = Arc::new(cache(&server.url, &clock));
    let all = (0..20).map(|_| {
        let keys = keys.clone();
        async move { keys.key_for(Some("rsa-1")).await.is_ok() }
    });
    assert!(
        futures::future::join_all(all)
            .await
            .into_iter()
            .all(|ok| ok)
    );
    assert_eq!(server.hits(), 1, "one fetch, the others waited for it");
}

#[tokio::test]
async fn stale_keys_are_served_at_once_while_one_refresh_fails_in_the_background() {
    let server = KeyServer::start(JWKS.into()).await;
    let clock = Clock::new();
    let keys = Arc::new(cache(&server.url, &clock));
    keys.key_for(Some("rsa-1")).await.unwrap();
    server.set(Mode::Fail);
    clock.advance(Duration::from_secs(601));
    // Past the TTL: every verification is answered from the cached keys,
    // and one refresh goes out.
    let all = (0..10).map(|_| {
        let keys = keys.clone();
        async move { promptly(keys.key_for(Some("rsa-1"))).await.is_ok() }
    });
    assert!(
        futures::future::join_all(all)
            .await
            .into_iter()
            .all(|ok| ok)
    );
    server.until_hits(2).await;
    settled(&keys).await;
    // Until `min_refetch` has passed no other fetch starts, whatever asks:
    // a stale key, or a key id nobody has.
    promptly(keys.key_for(Some("rsa-1"))).await.unwrap();
    for kid in ["random-1", "random-2", "random-3"] {
        assert!(matches!(
            promptly(keys.key_for(Some(kid))).await,
            Err(AuthError::UnknownKey(_))
        ));
    }
    assert_eq!(server.hits(), 2);
    clock.advance(Duration::from_secs(31));
    promptly(keys.key_for(Some("rsa-1"))).await.unwrap();
    server.until_hits(3).await;
    // Beyond the bound on staleness, the cached keys are no longer served.
    clock.advance(Duration::from_secs(3600));
    assert!(matches!(
        keys.key_for(Some("rsa-1")).await,
        Err(AuthError::KeysUnavailable(_))
    ));
}

#[tokio::test]
async fn a_hanging_key_server_costs_a_verification_nothing_when_cached_keys_verify_it() {
    let server = KeyServer::start(JWKS.into()).await;
    let clock = Clock::new();
    let keys = Arc::new(cache(&server.url, &clock));
    keys.key_for(Some("ec-1")).await.unwrap();
    server.set(Mode::Hang);
    clock.advance(Duration::from_secs(601));
    let all = (0..20).map(|_| {
        let keys = keys.clone();
        async move { promptly(keys.key_for(Some("ec-1"))).await.is_ok() }
    });
    assert!(
        futures::future::join_all(all)
            .await
            .into_iter()
            .all(|ok| ok)
    );
    // The refresh is out, and hangs: still nothing waits on it.
    server.until_hits(2).await;
    promptly(keys.key_for(Some("rsa-1"))).await.unwrap();
    assert!(
        keys.inner.refreshing.load(Ordering::SeqCst),
        "the hung refresh"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let server = KeyServer::start(only(&["ec-1"])).await;
    let clock = Clock::new();
    let keys = cache(&server.url, &clock);
    keys.key_for(Some("ec-1")).await.unwrap();
    // The provider rotates in a new key; a token signed with it arrives.
    server.set(Mode::Serve(only(&["ec-1", "rsa-1"])));
    assert!(
        matches!(
            keys.key_for(Some("rsa-1")).await,
            Err(AuthError::UnknownKey(_))
        ),
        "within min_refetch of the last fetch: no second fetch"
    );
    assert_eq!(server.hits(), 1);
    clock.advance(Duration::from_secs(31));
    keys.key_for(Some("rsa-1")).await.unwrap();
    assert_eq!(server.hits(), 2);
    // The old key still verifies, from the same fresh set.
    promptly(keys.key_for(Some("ec-1"))).await.unwrap();
    assert_eq!(server.hits(), 2);
}
