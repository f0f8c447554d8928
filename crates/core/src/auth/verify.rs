//! The token verification port: the domain asks "who is this token?" and
//! never sees keys, algorithms or key sets.

use async_trait::async_trait;

use super::claims::Identity;

/// Why a token was refused. The `Display` text is safe to log: it never
/// contains the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token in the request. The client must send one.
    #[error("no token")]
    Missing,
    /// Not a JWT at all. The client must send a real token.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify. Deny; the token is forged or for another key.
    #[error("bad signature")]
    BadSignature,
    /// The token's `alg` is not the one pinned for its key. Deny.
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// Past `exp` (beyond the leeway). The client must fetch a new token.
    #[error("token expired")]
    Expired,
    /// Before `nbf`. The client's clock or token issuer is off.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer. Deny.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not the configured audience. Deny.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent. Deny.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong shape (for example a malformed `rooms`). Deny.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// The token's `sub` is not a user id Roomcast takes as it is (empty,
    /// too long, control characters, whitespace at either end: ids are
    /// compared byte for byte, never trimmed). Refuse with 401: the
    /// identity provider issues ids no user can be told apart by.
    #[error("sub is not a usable user id: {0:?}")]
    MalformedSubject(String),
    /// The token names a key id the JWKS does not have. Deny.
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The JWKS could not be fetched. Deny now; the next attempt refetches.
    #[error("key set unavailable: {0}")]
    KeysUnavailable(String),
    /// The browser's `Origin` is not on the allowlist. Deny.
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
}

/// Verifies tokens. The domain depends on this trait, not on the key source.
#[async_trait]
pub trait Verify: Send + Sync {
    /// Verifies `token` and returns who it names.
    async fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}
