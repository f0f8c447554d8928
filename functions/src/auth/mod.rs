//! Authentication adapters: JWT verification (HS256, or RS256/ES256 from a
//! JWKS), the `Origin` allowlist and the REQUEST authorizer that runs before
//! `$connect`. The identity and the [`Verify`] port they implement live in
//! roomcast-core.

mod authorizer;
mod jwks;
mod jwt;
mod origin;

pub use authorizer::{
    AuthorizerContext, CONTEXT_DIRECT, CONTEXT_EXP, CONTEXT_NAME, CONTEXT_ROOMS, CONTEXT_USER,
    SUBPROTOCOL, authorize, authorize_with_reason, context_from_event, token_from_request,
};
pub use jwks::JwksCache;
pub use jwt::{DevClaims, TokenVerifier, VerifierOptions, mint_hs256};
pub use origin::OriginPolicy;
pub use roomcast_core::auth::{
    AuthError, Identity, MAX_NAME_LEN, MAX_USER_ID_LEN, Right, RoomRights, Verify, clean_name,
    glob_match,
};
