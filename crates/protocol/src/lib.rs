//! Roomcast's wire protocol, shared by the server and the clients.
//!
//! Today this crate holds what both sides need to stay safe on frames that
//! a JSON parser rejects: [`scan`] reads top-level fields without building
//! the document, and [`depth`] measures nesting without recursion.

pub mod depth;
pub mod scan;

pub use depth::{MAX_DATA_DEPTH, nesting_depth};
pub use scan::{TopLevel, top_level};
