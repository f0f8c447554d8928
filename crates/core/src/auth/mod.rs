//! Who a connection is and what it may do: the identity a verified token
//! names, its room rights, and the [`Verify`] port that turns a token into an
//! identity (JWT verification itself is an adapter, in roomcast-aws).

mod claims;
#[cfg(any(test, feature = "test-util"))]
mod fake;
mod verify;

pub use claims::{
    Identity, MAX_NAME_LEN, MAX_USER_ID_LEN, Right, RoomRights, clean_name, glob_match,
};
#[cfg(any(test, feature = "test-util"))]
pub use fake::{FakeVerifier, fake_token};
pub use roomcast_protocol::valid_user_id;
pub use verify::{AuthError, Verify};
