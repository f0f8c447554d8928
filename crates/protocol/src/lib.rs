//! Roomcast's wire protocol, shared by the server and the clients.
//!
//! - [`frames`]: every client and server frame, error code and the
//!   validation of client frames; `docs/protocol.md` is the reference.
//! - [`limits`]: the bounds every client frame is validated against.
//! - [`server_api`]: the server API's requests and answers, for the
//!   publish function and its clients.
//! - [`scan`] reads top-level fields without building the document, and
//!   [`depth`] measures nesting without recursion: both keep a reader safe
//!   on frames a JSON parser rejects.
//!
//! This crate depends on serde only, so the clients take it without any
//! server or AWS code.

pub mod depth;
pub mod frames;
pub mod limits;
pub mod scan;
pub mod server_api;

pub use depth::{MAX_DATA_DEPTH, nesting_depth};
pub use frames::*;
pub use limits::{Limits, MAX_USER_ID_LEN, valid_user_id};
pub use scan::{TopLevel, top_level};
