//! Roomcast's Lambda handlers and everything they stand on.
//!
//! - [`protocol`]: the client↔server frames.
//! - [`routes`]: the domain: what `$connect`, `$disconnect` and each action do,
//!   written against the [`store::Store`] and [`gateway::Gateway`] ports only.
//! - [`store`], [`gateway`]: the ports and their adapters (DynamoDB and the
//!   API Gateway Management API in production, in-memory for tests).
//! - [`auth`]: JWT verification, room rights, the REQUEST authorizer.
//! - [`handlers`]: the Lambda-facing layer turning API Gateway events into
//!   domain calls; the binaries in `src/bin/` and the emulator both call it.

pub mod auth;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod handlers;
pub mod protocol;
pub mod ratelimit;
pub mod routes;
pub mod store;
pub mod telemetry;
