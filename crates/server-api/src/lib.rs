//! A typed client of Roomcast's server API: the publish function, invoked
//! with Lambda Invoke (IAM), one method per operation
//! (docs/server-api.md). Build it once with your `aws_sdk_lambda::Client`
//! (pointed at `roomcast dev` with `endpoint_url` offline) and the
//! function's name or ARN.
//!
//! ```no_run
//! # async fn f(lambda: aws_sdk_lambda::Client) -> Result<(), roomcast_server_api::ServerApiError> {
//! let api = roomcast_server_api::ServerApi::new(lambda, "PublishFunction");
//! api.publish_to_room("lobby", serde_json::json!({"text": "hi"}), None).await?;
//! api.disconnect("mallory", 4001, "kicked by a moderator", false).await?;
//! # Ok(()) }
//! ```

use aws_sdk_lambda::primitives::Blob;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a call failed. Each variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServerApiError {
    /// The request was refused as malformed (the message names the
    /// field): fix the call. Lambda `errorType` `InvalidRequest` (or
    /// `InvalidPublish`).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The function does not know the operation: it is older than this
    /// client. Deploy the current template. `errorType` `UnknownOperation`.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// Roomcast's store failed: retry (every operation is safe to repeat;
    /// publishes with the same id are not duplicated).
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// The function failed otherwise (its `errorType` and message).
    #[error("{error_type}: {message}")]
    Function {
        /// Lambda's `errorType`.
        error_type: String,
        /// Lambda's `errorMessage`.
        message: String,
    },
    /// The invocation itself failed (IAM, network, throttling): see the
    /// SDK's error; retry if it is transient.
    #[error("invoke failed: {0}")]
    Invoke(String),
    /// The answer could not be read: client and function disagree.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

pub use roomcast_protocol::server_api::{
    Disconnected, HistoryPage, MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX, MemberEntry, MembersPage,
    PublishRequest, Published, RoomInfo, ServerRequest,
};

/// The server API of one Roomcast stack.
#[derive(Clone, Debug)]
pub struct ServerApi {
    lambda: aws_sdk_lambda::Client,
    function: String,
}

impl ServerApi {
    /// Calls `function` (the stack's publish function: name or ARN).
    pub fn new(lambda: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self {
            lambda,
            function: function.into(),
        }
    }

    /// Publishes to a room (stored, with a seq). `id` makes retries safe.
    pub async fn publish_to_room(
        &self,
        room: &str,
        data: Value,
        id: Option<&str>,
    ) -> Result<Published, ServerApiError> {
        self.call(ServerRequest::Publish(PublishRequest {
            room: Some(room.to_owned()),
            user: None,
            data,
            id: id.map(str::to_owned),
            from: None,
        }))
        .await
    }

    /// Publishes to every connection of a user (not stored).
    pub async fn publish_to_user(
        &self,
        user: &str,
        data: Value,
        id: Option<&str>,
    ) -> Result<Published, ServerApiError> {
        self.call(ServerRequest::Publish(PublishRequest {
            room: None,
            user: Some(user.to_owned()),
            data,
            id: id.map(str::to_owned),
            from: None,
        }))
        .await
    }

    /// Member count, present users, current seq.
    pub async fn room_info(&self, room: &str) -> Result<RoomInfo, ServerApiError> {
        self.call(ServerRequest::RoomInfo {
            room: room.to_owned(),
        })
        .await
    }

    /// One page of a room's member connections (`limit` 1 to
    /// [`MEMBERS_PAGE_MAX`], default [`MEMBERS_PAGE_DEFAULT`]).
    pub async fn members(
        &self,
        room: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<MembersPage, ServerApiError> {
        self.call(ServerRequest::Members {
            room: room.to_owned(),
            cursor: cursor.map(str::to_owned),
            limit,
        })
        .await
    }

    /// One page of a room's history, older than `before`.
    pub async fn history(
        &self,
        room: &str,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, ServerApiError> {
        self.call(ServerRequest::History {
            room: room.to_owned(),
            before,
            limit,
        })
        .await
    }

    /// Closes a user's connections; they see `code` (4000–4999) and
    /// `reason`, and reconnect on their own only if `reconnect`.
    pub async fn disconnect(
        &self,
        user: &str,
        code: u16,
        reason: &str,
        reconnect: bool,
    ) -> Result<Disconnected, ServerApiError> {
        self.call(ServerRequest::Disconnect {
            user: user.to_owned(),
            code: Some(code),
            reason: Some(reason.to_owned()),
            reconnect,
        })
        .await
    }

    /// Edits any message of a room as a moderator: `message` is its id,
    /// `author` its sender; `id` makes retries safe. Members get it as a
    /// change in the room's stream (docs/protocol.md).
    pub async fn edit(
        &self,
        room: &str,
        author: &str,
        message: &str,
        data: Value,
        id: &str,
    ) -> Result<Published, ServerApiError> {
        self.call(ServerRequest::Edit {
            room: room.to_owned(),
            id: id.to_owned(),
            message: message.to_owned(),
            author: author.to_owned(),
            data,
            replaces: None,
            from: None,
        })
        .await
    }

    /// Deletes any message of a room as a moderator: its data is erased
    /// from storage, a tombstone stays. As [`ServerApi::edit`].
    pub async fn delete(
        &self,
        room: &str,
        author: &str,
        message: &str,
        id: &str,
    ) -> Result<Published, ServerApiError> {
        self.call(ServerRequest::Delete {
            room: room.to_owned(),
            id: id.to_owned(),
            message: message.to_owned(),
            author: author.to_owned(),
            from: None,
        })
        .await
    }

    /// Closes a user's connections and refuses their connects and frames
    /// until `until` (seconds since the epoch; their token's `exp` at most
    /// is enough).
    pub async fn revoke(
        &self,
        user: &str,
        until: i64,
        code: u16,
        reason: &str,
    ) -> Result<Disconnected, ServerApiError> {
        self.call(ServerRequest::Revoke {
            user: user.to_owned(),
            until,
            code: Some(code),
            reason: Some(reason.to_owned()),
        })
        .await
    }

    async fn call<T: DeserializeOwned>(&self, request: ServerRequest) -> Result<T, ServerApiError> {
        // Plain data: serialising cannot fail; what the caller left out is
        // absent, not null (`skip_serializing_if`).
        let request =
            serde_json::to_string(&request).map_err(|e| ServerApiError::Decode(e.to_string()))?;
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(request))
            .send()
            .await
            .map_err(|e| {
                ServerApiError::Invoke(
                    aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
                )
            })?;
        let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if out.function_error().is_some() {
            return Err(function_error(payload));
        }
        serde_json::from_slice(payload).map_err(|e| ServerApiError::Decode(e.to_string()))
    }
}

/// Lambda's error document, as a typed error.
fn function_error(payload: &[u8]) -> ServerApiError {
    let doc: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let text = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (error_type, message) = (text("errorType"), text("errorMessage"));
    match error_type.as_str() {
        "InvalidRequest" | "InvalidPublish" => ServerApiError::InvalidRequest(message),
        "UnknownOperation" => ServerApiError::UnknownOperation(message),
        "StoreUnavailable" => ServerApiError::StoreUnavailable(message),
        _ => ServerApiError::Function {
            error_type,
            message,
        },
    }
}
