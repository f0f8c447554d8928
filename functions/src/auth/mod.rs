//! Authentication: JWT verification, room rights, the `Origin` allowlist and
//! the REQUEST authorizer that runs before `$connect`.

mod authorizer;
mod claims;
mod jwks;
mod jwt;
mod origin;

pub use authorizer::{
    AuthorizerContext, CONTEXT_DIRECT, CONTEXT_EXP, CONTEXT_NAME, CONTEXT_ROOMS, CONTEXT_USER,
    SUBPROTOCOL, authorize, context_from_event, token_from_request,
};
pub use claims::{
    Identity, MAX_NAME_LEN, MAX_USER_ID_LEN, Right, RoomRights, clean_name, glob_match,
};
pub use jwks::JwksCache;
pub use jwt::{AuthError, DevClaims, TokenVerifier, VerifierOptions, Verify, mint_hs256};
pub use origin::OriginPolicy;
