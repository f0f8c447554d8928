//! Roomcast's core: the domain and its ports, with no AWS, Lambda, JWT or
//! HTTP dependency (its `Cargo.toml` has none, and CI checks `cargo tree`).
//!
//! - [`routes`]: what `$connect`, `$disconnect`, each client action and a
//!   server publish do, written against the ports only.
//! - Ports: [`store::Store`], [`gateway::Gateway`], [`auth::Verify`],
//!   [`clock::Clock`], [`metrics::Metrics`], [`shard::Dispatch`],
//!   [`events::Events`].
//! - In-memory adapters: [`store::memory::MemoryStore`] (the emulator's
//!   embedded store) and, behind the `test-util` feature, the gateway, clock,
//!   verifier and metrics fakes and the Store conformance suite.
//! - [`config`], [`ratelimit`]: limits and knobs, and the GCRA rate limit.

pub use roomcast_protocol as protocol;

pub mod auth;
pub mod clock;
pub mod config;
pub mod events;
pub mod gateway;
pub mod metrics;
pub mod pacer;
pub mod ratelimit;
pub mod routes;
pub mod shard;
pub mod store;
