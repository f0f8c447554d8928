//! An API Gateway WebSocket emulator for Roomcast's handlers.
//!
//! - [`template`]: reads `template.yaml` (routes, authorizer, stage,
//!   functions, environment, the table definition).

pub mod template;
