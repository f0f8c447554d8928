//! Roomcast's end-to-end suites, one module each, in one test binary:
//! linked once instead of once per suite, which on a 2-core machine saves
//! minutes of CI (the generic code of the AWS SDK, tokio-tungstenite and
//! the emulator is instantiated and linked once). `tests/deployed.rs`, run
//! by hand against a deployed stack, stays a target of its own.
//!
//! One suite alone: `cargo nextest run -E 'test(/^emulator_roomcast::/)'`
//! or `cargo test --test e2e emulator_roomcast::`.

mod common;

mod changes;
mod cli;
mod client;
mod emulator_echo;
mod emulator_faults;
mod emulator_gateway;
mod emulator_hostile;
mod emulator_iam;
mod emulator_inspector;
mod emulator_lambda;
mod emulator_management;
mod emulator_roomcast;
mod emulator_security;
mod emulator_sigv4;
mod emulator_tls;
mod events;
mod events_adapter;
mod examples;
mod hot_room;
mod lean_post;
mod protocol_types;
mod server_api;
mod store_dynamodb;
mod store_memory;
mod store_throttled;
