//! A JWKS fetched over HTTPS and cached with a TTL, refreshed without
//! making a connect wait.
//!
//! Fetched with the AWS SDK's own HTTP connector (hyper and rustls, the
//! platform's roots), so a function links one HTTP stack, not a second
//! client beside the SDK's; proxies come from `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, and redirects are followed (at most
//! `MAX_REDIRECTS`, never from `https` to `http`), as a general HTTP
//! client does.
//!
//! Keys are pinned to RS256 (RSA) and ES256 (P-256): the algorithm comes from
//! the JWK, and a token whose header says otherwise is refused.
//!
//! How a slow or failing identity provider is kept off the connect path:
//! - **stale while revalidate**: past its TTL the key set is still served,
//!   at once, while one background task refetches it; for at most
//!   `max_stale` beyond the TTL (default 1 h), after which a token waits
//!   for a fresh set (or fails if there is none);
//! - **one fetch at a time, rate-limited**: a fetch happens at most once
//!   per `min_refetch` (default 30 s), whatever triggered it (the TTL, an
//!   unknown key id, a cold start), so random key ids cannot turn the
//!   authorizer into a request amplifier against the identity provider;
//! - **no lock across a fetch that verifications wait on**: the key set is
//!   read under a lock held for a copy of an `Arc`; only a caller that
//!   cannot verify without new keys (an unknown key id, no keys yet) waits
//!   for the fetch in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use roomcast_core::auth::AuthError;

/// How long one JWKS fetch may take, redirects included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed per fetch.
const MAX_REDIRECTS: usize = 5;
/// A key set may be this long; real ones are a few KB.
const MAX_BODY: usize = 1024 * 1024;

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    alg: Algorithm,
}

/// What is known: the keys (shared, never copied), when they were fetched
/// and when a fetch was last tried.
#[derive(Clone, Default)]
struct Known {
    keys: Arc<Vec<Key>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// The time, replaceable in tests.
type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The key cache. Build once at init and share.
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    /// Boxed: the config is large, and read once.
    proxy: Box<ProxyConfig>,
    /// Built on the first fetch: building loads the TLS roots, which
    /// would otherwise cost every cold start a few milliseconds.
    connector: OnceLock<SharedHttpConnector>,
    ttl: Duration,
    max_stale: Duration,
    min_refetch: Duration,
    now: Now,
    /// Held for a copy of the `Arc`, never across an await.
    known: RwLock<Known>,
    /// Held by the one fetch in flight; waited on only by callers that
    /// need its result.
    fetching: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

impl JwksCache {
    /// A cache for `url`, refreshed every `ttl` (a common choice is 10 min),
    /// through the proxy the environment names, if any.
    pub fn new(url: impl Into<String>, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                proxy: Box::new(ProxyConfig::from_env()),
                connector: OnceLock::new(),
                ttl,
                max_stale: Duration::from_secs(3600),
                min_refetch: Duration::from_secs(30),
                now: Arc::new(Instant::now),
                known: RwLock::new(Known::default()),
                fetching: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// Fetches through `proxy` instead of the one the environment names.
    pub fn with_proxy(self, proxy: ProxyConfig) -> Self {
        self.configure(|i| *i.proxy = proxy)
    }

    /// Sets the shortest interval between two fetches, whatever triggers
    /// them. Default 30 s.
    pub fn with_min_refetch(self, interval: Duration) -> Self {
        self.configure(|i| i.min_refetch = interval)
    }

    /// Sets how long past its TTL a key set is still served while it
    /// cannot be refreshed. Default 1 h.
    pub fn with_max_stale(self, stale: Duration) -> Self {
        self.configure(|i| i.max_stale = stale)
    }

    /// Reads the time from `now` (tests).
    pub fn with_clock(self, now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.configure(|i| i.now = Arc::new(now))
    }

    /// The key and pinned algorithm for a token's `kid`. Without a `kid`, the
    /// set must hold exactly one usable key.
    pub(super) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<(DecodingKey, Algorithm), AuthError> {
        let inner = &self.inner;
        let now = (inner.now)();
        let known = inner.snapshot();
        let age = known.fetched_at.map(|t| now.saturating_duration_since(t));
        let servable = age.is_some_and(|a| a < inner.ttl + inner.max_stale);
        if let Some(k) = find(&known.keys, kid).filter(|_| servable) {
            if age.is_some_and(|a| a >= inner.ttl) {
                self.refresh_in_background(now);
            }
            return Ok((k.key.clone(), k.alg));
        }
        // No key for this token yet: an unknown key id (a rotation), no
        // keys at all, or keys too stale to serve. Wait for a fetch, unless
        // one was tried within `min_refetch`.
        let known = inner.fetch_if_due(&known).await?;
        let usable = known.fetched_at.is_some_and(|t| {
            (inner.now)().saturating_duration_since(t) < inner.ttl + inner.max_stale
        });
        find(&known.keys, kid)
            .filter(|_| usable)
            .map(|k| (k.key.clone(), k.alg))
            .ok_or_else(|| {
                if known.keys.is_empty() || !usable {
                    AuthError::KeysUnavailable("no key set could be fetched yet".into())
                } else {
                    AuthError::UnknownKey(kid.unwrap_or_default().chars().take(64).collect())
                }
            })
    }

    /// Starts one background refresh, if none is running and one is due.
    fn refresh_in_background(&self, now: Instant) {
        let inner = &self.inner;
        let attempted = inner.snapshot().attempted_at;
        if attempted.is_some_and(|t| now.saturating_duration_since(t) < inner.min_refetch) {
            return;
        }
        if inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let known = inner.snapshot();
            if let Err(e) = inner.fetch_if_due(&known).await {
                tracing::warn!(error = %e, url = %inner.url, "JWKS refresh failed; serving the cached keys");
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }
}

impl Inner {
    fn snapshot(&self) -> Known {
        self.known
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Fetches the key set unless another fetch replaced `seen` meanwhile
    /// or one was tried within `min_refetch`; returns what is known after.
    /// One fetch at a time: concurrent callers wait for it, then use it.
    async fn fetch_if_due(&self, seen: &Known) -> Result<Known, AuthError> {
        let _one = self.fetching.lock().await;
        let known = self.snapshot();
        if known.fetched_at != seen.fetched_at {
            return Ok(known);
        }
        let now = (self.now)();
        if known
            .attempted_at
            .is_some_and(|t| now.saturating_duration_since(t) < self.min_refetch)
        {
            return Ok(known);
        }
        self.update(|k| k.attempted_at = Some(now));
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.update(|k| {
                    k.keys = keys;
                    k.fetched_at = Some(now);
                });
                Ok(self.snapshot())
            }
            // Keep serving the keys we have: an identity provider blip
            // should not log everybody out.
            Err(e) if !known.keys.is_empty() => {
                tracing::warn!(error = %e, url = %self.url, "JWKS fetch failed; keeping the cached keys");
                Ok(self.snapshot())
            }
            Err(e) => Err(e),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Known)) {
        match self.known.write() {
            Ok(mut k) => f(&mut k),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, AuthError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, self.get())
            .await
            .map_err(|_| {
                AuthError::KeysUnavailable(format!("no answer within {FETCH_TIMEOUT:?}"))
            })??;
        let set: Set = serde_json::from_slice(&body)
            .map_err(|e| AuthError::KeysUnavailable(format!("not a JSON key set: {e}")))?;
        // Parse keys one by one: a key type we do not support must not make
        // the whole set unusable.
        let keys: Vec<Key> = set
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(AuthError::KeysUnavailable(
                "the key set has no RS256 or ES256 signing key".into(),
            ));
        }
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS loaded");
        Ok(keys)
    }
}

impl Inner {
    fn connector(&self) -> &SharedHttpConnector {
        self.connector.get_or_init(|| {
            let crypto = tls::rustls_provider::CryptoMode::AwsLc;
            SharedHttpConnector::new(
                Connector::builder()
                    .proxy_config((*self.proxy).clone())
                    .tls_provider(tls::Provider::Rustls(crypto))
                    .build(),
            )
        })
    }

    /// The key set's bytes: `GET url`, following redirects.
    async fn get(&self) -> Result<Vec<u8>, AuthError> {
        let unavailable = |e: String| AuthError::KeysUnavailable(e);
        let mut url = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = HttpRequest::get(&url).map_err(|e| unavailable(e.to_string()))?;
            request.headers_mut().insert("accept", "application/json");
            let response = self
                .connector()
                .call(request)
                .await
                .map_err(|e| unavailable(format!("{url}: {e}")))?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response.headers().get("location").unwrap_or_default();
                url = redirect(&url, location).ok_or_else(|| {
                    unavailable(format!("{url}: redirect to {location:?} refused"))
                })?;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(unavailable(format!("{url}: HTTP {status}")));
            }
            let mut body = ByteStream::new(response.into_body());
            let mut bytes = Vec::new();
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| unavailable(format!("{url}: {e}")))?
            {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(unavailable(format!("{url}: key set over {MAX_BODY} bytes")));
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(bytes);
        }
        Err(unavailable(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

/// Where a redirect from `from` to `location` goes: an absolute `http(s)`
/// URL or a path on the same origin; `None` for anything else, and for a
/// step down from `https` to `http` (keys must not travel in the clear).
fn redirect(from: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") {
        return Some(location.to_owned());
    }
    if location.starts_with("http://") {
        return (!from.starts_with("https://")).then(|| location.to_owned());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme_end = from.find("://")? + 3;
        let origin_end = from[scheme_end..]
            .find('/')
            .map_or(from.len(), |i| scheme_end + i);
        return Some(format!("{}{location}", &from[..origin_end]));
    }
    None
}

fn find<'a>(keys: &'a [Key], kid: Option<&str>) -> Option<&'a Key> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        key,
        alg,
    })
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod refresh_tests;
#[cfg(test)]
mod tests;
