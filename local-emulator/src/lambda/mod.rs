//! AWS Lambda: invoking the template's functions, in process (`invoke`,
//! with Roomcast's own handlers from `registry`) or as real processes
//! behind an emulated Runtime API, and the Invoke API (`invoke_api`) that
//! backends call with the real SDKs.
//!
//! - `launch`: which program runs a function (cargo binary, bootstrap,
//!   Python or Node runtime interface client); `architecture`: a
//!   bootstrap built for another machine, run under QEMU;
//! - `environment`: Lambda's reserved variables and endpoint settings;
//! - `process`: spawning, output lines prefixed with function and request
//!   id, exit and kill;
//! - `sandbox` and `runtime_api`: one execution environment's Runtime API;
//! - `instance`: a process with its Runtime API; `pool`: a function's warm
//!   instances.

pub(crate) mod architecture;
pub(crate) mod async_queue;
pub(crate) mod build;
pub(crate) mod environment;
pub(crate) mod instance;
pub(crate) mod invoke;
pub(crate) mod invoke_api;
pub(crate) mod launch;
pub(crate) mod launch_error;
pub(crate) mod log_text;
pub(crate) mod node_version;
pub(crate) mod options;
pub(crate) mod pool;
pub(crate) mod process;
pub mod registry;
pub(crate) mod runtime_api;
pub mod runtime_sdk;
pub(crate) mod sandbox;
pub(crate) mod service;
pub(crate) mod watch;

pub use launch_error::{FunctionError, LaunchError};

#[cfg(test)]
mod tests;
