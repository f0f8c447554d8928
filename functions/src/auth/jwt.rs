//! JWT verification with pinned algorithms.
//!
//! Two modes: HS256 with a shared secret, or RS256/ES256 with keys from a JWKS
//! URL (Cognito, Auth0). The algorithm comes from our configuration or the
//! JWK, never from the token alone, which rules out `alg: none` and HS/RS
//! confusion. `exp` and `sub` are required, `nbf` is checked, `iss`/`aud`
//! are checked when configured.

use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use roomcast_core::auth::{AuthError, Identity, MAX_USER_ID_LEN, RoomRights, Verify, clean_name};

use super::jwks::JwksCache;

/// Checks common to both modes.
#[derive(Clone, Debug, Default)]
pub struct VerifierOptions {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
}

enum Keys {
    Secret(DecodingKey),
    Jwks(JwksCache),
}

/// The verifier used in production and in the emulator.
pub struct TokenVerifier {
    keys: Keys,
    options: VerifierOptions,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.keys {
            Keys::Secret(_) => "hs256",
            Keys::Jwks(_) => "jwks",
        };
        f.debug_struct("TokenVerifier")
            .field("mode", &mode)
            .field("options", &self.options)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawClaims {
    // Optional here so that a missing claim is reported as such, whichever of
    // jsonwebtoken's checks or our deserialisation sees it first.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rooms: Option<RoomRights>,
    #[serde(default)]
    direct: bool,
}

impl TokenVerifier {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], options: VerifierOptions) -> Self {
        Self {
            keys: Keys::Secret(DecodingKey::from_secret(secret)),
            options,
        }
    }

    /// RS256/ES256 with keys from a JWKS.
    pub fn jwks(cache: JwksCache, options: VerifierOptions) -> Self {
        Self {
            keys: Keys::Jwks(cache),
            options,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.options.leeway_secs;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.options.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.options.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

#[async_trait]
impl Verify for TokenVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(map_error)?;
        let (key, alg) = match &self.keys {
            Keys::Secret(key) => (key.clone(), Algorithm::HS256),
            Keys::Jwks(cache) => cache.key_for(header.kid.as_deref()).await?,
        };
        if header.alg != alg {
            return Err(AuthError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &self.validation(alg))
            .map_err(map_error)?;
        identity(data.claims)
    }
}

fn identity(c: RawClaims) -> Result<Identity, AuthError> {
    let sub = c.sub.ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
    let exp = c.exp.ok_or_else(|| AuthError::MissingClaim("exp".into()))?;
    if !roomcast_core::auth::valid_user_id(&sub) {
        // Bounded and escaped for the log line it ends up in.
        let shown: String = sub.chars().take(MAX_USER_ID_LEN).collect();
        return Err(AuthError::MalformedSubject(shown));
    }
    let name = c
        .name
        .as_deref()
        .map(clean_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| clean_name(&sub));
    Ok(Identity {
        user: sub,
        name,
        exp,
        rooms: c.rooms.unwrap_or_default(),
        direct: c.direct,
    })
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAllowed("token header".into()),
        ErrorKind::InvalidClaimFormat(c) => AuthError::InvalidClaims(c.clone()),
        ErrorKind::Json(e) => AuthError::InvalidClaims(e.to_string()),
        other => AuthError::Malformed(format!("{other:?}")),
    }
}

/// Claims of a token minted by [`mint_hs256`] (dev tokens and tests).
#[derive(Clone, Debug, Serialize)]
pub struct DevClaims {
    /// User id.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Room rights.
    pub rooms: RoomRights,
    /// Direct messages allowed.
    pub direct: bool,
    /// Issuer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Signs an HS256 token. Used by the emulator's `/dev/token` and by tests;
/// production tokens come from the team's identity provider.
pub fn mint_hs256(claims: &DevClaims, secret: &[u8]) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests;
