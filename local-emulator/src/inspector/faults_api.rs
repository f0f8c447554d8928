//! The fault API, for the inspector, `roomcast fault` and a team's own
//! tests (docs/faults.md):
//!
//! - `GET /_roomcast/faults`: the active faults;
//! - `POST /_roomcast/faults`: add one (201 with it; 400 saying what is
//!   wrong: an unknown fault, field or scope, a bad value);
//! - `DELETE /_roomcast/faults/{id}`: remove one (204; 404 if unknown);
//! - `DELETE /_roomcast/faults`: remove all (200 with how many);
//! - `POST /_roomcast/connections/{id}/cut`: drop a connection's TCP
//!   without a close frame, as a network failure does (204; 404).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as Shared};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::Inspector;
use crate::apigateway::connections::CloseReason;
use crate::faults::FaultRequest;
use crate::http::{HttpError, json};

/// `GET /_roomcast/faults`.
pub(crate) async fn list(Shared(state): Shared<Arc<Inspector>>) -> Response {
    json(StatusCode::OK, &json!({"faults": state.faults.list()}))
}

/// `POST /_roomcast/faults`.
pub(crate) async fn add(
    Shared(state): Shared<Arc<Inspector>>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| HttpError::BadRequest(format!("the body is not JSON: {e}")))?;
    let request = FaultRequest::from_json(v).map_err(HttpError::BadRequest)?;
    let added = state.faults.add(request).map_err(HttpError::BadRequest)?;
    tracing::info!(id = added.id, "fault added");
    Ok(json(StatusCode::CREATED, &json!(added)))
}

/// `DELETE /_roomcast/faults/{id}`.
pub(crate) async fn remove(
    Shared(state): Shared<Arc<Inspector>>,
    Path(id): Path<String>,
) -> Response {
    match id.parse::<u64>() {
        Ok(id) if state.faults.remove(id) => StatusCode::NO_CONTENT.into_response(),
        _ => HttpError::NotFound(format!("no active fault {id}\n")).into_response(),
    }
}

/// `DELETE /_roomcast/faults`.
pub(crate) async fn clear(Shared(state): Shared<Arc<Inspector>>) -> Response {
    json(StatusCode::OK, &json!({"removed": state.faults.clear()}))
}

/// `POST /_roomcast/functions/{name}/cold`: stops a process function's
/// warm instances, so its next invocation is a cold start.
pub(crate) async fn cold(
    Shared(state): Shared<Arc<Inspector>>,
    Path(name): Path<String>,
) -> Response {
    let Some(function) = state.lambda.function(&name) else {
        return HttpError::NotFound(format!("no function {name}\n")).into_response();
    };
    match function.force_cold() {
        Some(stopped) => {
            tracing::info!(function = %name, stopped, "function forced cold");
            json(StatusCode::OK, &json!({"stopped": stopped}))
        }
        None => HttpError::BadRequest(format!(
            "{name} runs in the emulator's process: it has no instances to make cold (use --functions process)"
        ))
        .into_response(),
    }
}

/// `POST /_roomcast/connections/{id}/cut`.
pub(crate) async fn cut(Shared(state): Shared<Arc<Inspector>>, Path(id): Path<String>) -> Response {
    let cut = state.connections.close(&id, CloseReason::abnormal());
    if cut {
        tracing::info!(connection_id = %id, "connection cut without a close frame");
        StatusCode::NO_CONTENT.into_response()
    } else {
        HttpError::NotFound(format!("no open connection {id}\n")).into_response()
    }
}
