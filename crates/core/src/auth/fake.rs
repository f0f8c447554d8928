//! A verifier for tests that need tokens without a signing library: a token
//! is `fake.` followed by the identity as JSON. It checks `exp` against the
//! system clock like the real verifier (no leeway), so expiry paths run.

use async_trait::async_trait;

use super::claims::Identity;
use super::verify::{AuthError, Verify};

const PREFIX: &str = "fake.";

/// Accepts tokens made by [`fake_token`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeVerifier;

/// A token [`FakeVerifier`] accepts for `identity` (until `identity.exp`).
pub fn fake_token(identity: &Identity) -> String {
    format!(
        "{PREFIX}{}",
        serde_json::to_string(identity).unwrap_or_default()
    )
}

#[async_trait]
impl Verify for FakeVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let body = token
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| AuthError::Malformed("not a fake token".into()))?;
        let identity: Identity =
            serde_json::from_str(body).map_err(|e| AuthError::InvalidClaims(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if i64::try_from(now).unwrap_or(i64::MAX) > identity.exp {
            return Err(AuthError::Expired);
        }
        Ok(identity)
    }
}
