//! A JWKS fetched over HTTPS and cached with a TTL.
//!
//! Fetched with the AWS SDK's own HTTP connector (hyper and rustls, the
//! platform's roots), so a function links one HTTP stack, not a second
//! client beside the SDK's; proxies come from `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, and redirects are followed (at most
//! `MAX_REDIRECTS`, never from `https` to `http`), as a general HTTP
//! client does.
//!
//! Keys are pinned to RS256 (RSA) and ES256 (P-256): the algorithm comes from
//! the JWK, and a token whose header says otherwise is refused. An unknown
//! `kid` triggers one refetch (key rotation), at most once per
//! `min_refetch`, so random key ids cannot turn the authorizer into a
//! request amplifier against the identity provider.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;

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

#[derive(Default)]
struct State {
    keys: Vec<Key>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// The key cache. Build once at init and share.
pub struct JwksCache {
    url: String,
    /// Boxed: the config is large, and read once.
    proxy: Box<ProxyConfig>,
    /// Built on the first fetch: building loads the TLS roots, which
    /// would otherwise cost every cold start a few milliseconds.
    connector: OnceLock<SharedHttpConnector>,
    ttl: Duration,
    min_refetch: Duration,
    state: Mutex<State>,
}

impl JwksCache {
    /// A cache for `url`, refreshed every `ttl` (a common choice is 10 min),
    /// through the proxy the environment names, if any.
    pub fn new(url: impl Into<String>, ttl: Duration) -> Self {
        Self {
            url: url.into(),
            proxy: Box::new(ProxyConfig::from_env()),
            connector: OnceLock::new(),
            ttl,
            min_refetch: Duration::from_secs(30),
            state: Mutex::new(State::default()),
        }
    }

    /// Fetches through `proxy` instead of the one the environment names.
    pub fn with_proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = Box::new(proxy);
        self
    }

    /// Sets the shortest interval between two fetches triggered by unknown
    /// key ids. Default 30 s.
    pub fn with_min_refetch(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// The key and pinned algorithm for a token's `kid`. Without a `kid`, the
    /// set must hold exactly one usable key.
    pub(super) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<(DecodingKey, Algorithm), AuthError> {
        // Holding this async mutex across the fetch is deliberate: concurrent
        // verifications wait for one fetch instead of each starting their own.
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let stale = state
            .fetched_at
            .is_none_or(|t| now.duration_since(t) >= self.ttl);
        let missing = find(&state.keys, kid).is_none();
        let may_refetch = state
            .attempted_at
            .is_none_or(|t| now.duration_since(t) >= self.min_refetch);
        if stale || (missing && may_refetch) {
            state.attempted_at = Some(now);
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(now);
                }
                // Keep serving the keys we have: an identity provider blip
                // should not log everybody out.
                Err(e) if !state.keys.is_empty() => {
                    tracing::warn!(error = %e, url = %self.url, "JWKS refresh failed; using cached keys");
                }
                Err(e) => return Err(e),
            }
        }
        find(&state.keys, kid)
            .map(|k| (k.key.clone(), k.alg))
            .ok_or_else(|| {
                AuthError::UnknownKey(kid.unwrap_or_default().chars().take(64).collect())
            })
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

impl JwksCache {
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
mod tests;
