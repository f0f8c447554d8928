//! API Gateway WebSocket APIs: the handshake with `$connect` and its
//! REQUEST authorizer (`upgrade`), each connection's frames, limits, timers
//! and route selection (`socket`), the connection registry
//! (`connections`), the Lambda proxy events it builds (`events`), the
//! `@connections` Management API (`management`), and the in-process
//! gateway that skips HTTP for Roomcast's own handlers
//! (`inprocess_gateway`). DESIGN.md §2 lists the behaviour each follows.

pub(crate) mod connections;
pub(crate) mod events;
pub(crate) mod inprocess_gateway;
pub(crate) mod management;
pub(crate) mod options;
pub(crate) mod post;
pub(crate) mod query;
pub(crate) mod routing;
pub(crate) mod service;
pub(crate) mod socket;
pub(crate) mod template;
pub(crate) mod upgrade;
