//! Roomcast on AWS: the adapters that connect the domain (roomcast-core) to
//! Lambda, DynamoDB and API Gateway, and the Lambda handlers.
//!
//! - [`dynamodb`]: the single-table [`Store`](roomcast_core::store::Store)
//!   adapter.
//! - [`management`]: the [`Gateway`](roomcast_core::gateway::Gateway)
//!   adapter over the API Gateway Management API.
//! - [`auth`]: JWT verification (HS256 or a JWKS), the `Origin` allowlist and
//!   the REQUEST authorizer.
//! - [`dispatch`]: the [`Dispatch`](roomcast_core::shard::Dispatch) adapter,
//!   Lambda's asynchronous Invoke of the `fanout` function.
//! - [`eventbridge`]: the [`Events`](roomcast_core::events::Events) adapter,
//!   batched `PutEvents` to the stack's bus.
//! - [`telemetry`]: CloudWatch EMF, the metrics adapter.
//! - [`handlers`]: API Gateway events in, domain calls, responses out; the
//!   thin mains in `src/bin/` and the emulator both call them.

pub mod auth;
pub mod dispatch;
pub mod dynamodb;
pub mod error_chain;
pub mod eventbridge;
pub mod handlers;
pub mod in_process;
pub mod management;
pub mod sigv4;
pub mod telemetry;

pub use roomcast_core::{
    clock, config, events, gateway, pacer, protocol, ratelimit, routes, shard, store,
};
