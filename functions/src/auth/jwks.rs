//! A JWKS fetched over HTTPS and cached with a TTL.
//!
//! Keys are pinned to RS256 (RSA) and ES256 (P-256): the algorithm comes from
//! the JWK, and a token whose header says otherwise is refused. An unknown
//! `kid` triggers one refetch (key rotation), at most once per
//! `min_refetch`, so random key ids cannot turn the authorizer into a
//! request amplifier against the identity provider.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;

use roomcast_core::auth::AuthError;

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

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
    client: reqwest::Client,
    ttl: Duration,
    min_refetch: Duration,
    state: Mutex<State>,
}

impl JwksCache {
    /// A cache for `url`, refreshed every `ttl` (a common choice is 10 min).
    pub fn new(url: impl Into<String>, client: reqwest::Client, ttl: Duration) -> Self {
        Self {
            url: url.into(),
            client,
            ttl,
            min_refetch: Duration::from_secs(30),
            state: Mutex::new(State::default()),
        }
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
        let unavailable = |e: reqwest::Error| AuthError::KeysUnavailable(e.to_string());
        let response = self
            .client
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?;
        let set: Set = response.json().await.map_err(unavailable)?;
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
