//! Why the emulator could not start: one enum, each variant saying what to
//! fix.

use std::net::SocketAddr;

use crate::{dev_secret, lambda, private_dir, template};

/// Why the emulator could not start or run. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The template could not be read or lacks what the emulator needs.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// A function of the template cannot be made ready: the error names
    /// it and what to fix.
    #[error(transparent)]
    Function(#[from] lambda::FunctionError),
    /// `--functions process` without a store every process can reach.
    #[error(
        "--functions process runs every function as its own process, and they share state only through DynamoDB: pass --dynamodb-endpoint (e.g. the moto_server that `bash infra/moto-start.sh` starts){conflict}"
    )]
    ProcessNeedsStore {
        /// Also refused: the in-process gateway, which processes cannot use.
        conflict: &'static str,
    },
    /// The address is taken or not allowed. Pick another `--port`.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The cache directory is not the developer's alone: the message says
    /// how to fix it.
    #[error("the cache directory: {0}")]
    CacheDir(#[from] private_dir::PrivateDirError),
    /// The development signing secret could not be had.
    #[error("the development signing secret: {0}")]
    DevSecret(#[from] dev_secret::DevSecretError),
    /// `--dynamodb-endpoint` did not answer: start DynamoDB there, or
    /// leave the flag out to use the memory store.
    #[error(
        "cannot reach DynamoDB at {endpoint} ({reason}): start it (e.g. `bash infra/moto-start.sh`), or leave out --dynamodb-endpoint to use the memory store"
    )]
    DynamoDb {
        /// The endpoint.
        endpoint: String,
        /// What happened, on one line.
        reason: String,
    },
    /// DynamoDB mode: the table is missing or could not be created.
    #[error("cannot prepare table {table}: {reason}")]
    Table {
        /// The table name.
        table: String,
        /// Why.
        reason: String,
    },
}
