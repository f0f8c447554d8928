//! EventBridge's API on the emulator's port: the awsJson1_1 protocol
//! (`POST /`, `X-Amz-Target: AWSEvents.<Operation>`), as aws-sdk-eventbridge,
//! boto3 and the AWS CLI speak it with `--endpoint-url`. Errors carry the
//! exception name in `__type` and `x-amzn-ErrorType`.

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::EventBridge;
use super::pattern::Pattern;
use super::put_events::{self, EntryError};
use crate::http::HttpError;

/// The most a request body may hold (ten entries of 256 KB in all, plus
/// the JSON around them).
const MAX_BODY: usize = 1024 * 1024;

/// Whether `req` is an EventBridge API call.
pub(crate) fn is_eventbridge(req: &Request) -> bool {
    req.method() == http::Method::POST
        && req.uri().path() == "/"
        && req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("AWSEvents."))
}

/// Serves one EventBridge call.
pub(crate) async fn serve(state: &EventBridge, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return json11(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                format!("the request body is over {MAX_BODY} bytes"),
            )
            .into_response();
        }
    };
    handle(state, &parts.headers, &body).unwrap_or_else(IntoResponse::into_response)
}

/// IAM's check of a function's call (EventBridge User Guide, "Using
/// identity-based policies for Amazon EventBridge": `events:PutEvents` on
/// each entry's event bus, `default` when an entry names none).
fn authorized(
    state: &EventBridge,
    headers: &HeaderMap,
    target: &str,
    request: &Value,
) -> Result<(), HttpError> {
    let Some(iam) = &state.handles.iam else {
        return Ok(());
    };
    let operation = target.strip_prefix("AWSEvents.").unwrap_or(target);
    let bus = |named: &str| {
        if named.starts_with("arn:") {
            named.to_owned()
        } else {
            format!(
                "arn:aws:events:{}:{}:event-bus/{}",
                state.handles.region,
                crate::template::ACCOUNT,
                super::rules::bus_name(named)
            )
        }
    };
    let requests = || match operation {
        "PutEvents" => request["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let named = e["EventBusName"].as_str().unwrap_or_default();
                crate::iam::Request::new("events:PutEvents", bus(named))
            })
            .collect(),
        other => vec![crate::iam::Request::new(format!("events:{other}"), "*")],
    };
    iam.check_signed(headers, requests)
        .map_err(|d| HttpError::Json11 {
            status: StatusCode::BAD_REQUEST,
            kind: "AccessDeniedException",
            message: d.message,
        })
}

/// One EventBridge operation.
fn handle(state: &EventBridge, headers: &HeaderMap, body: &Bytes) -> Result<Response, HttpError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        json11(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("the request body is not JSON: {e}"),
        )
    })?;
    // Known names only: the header is the caller's, labels must stay few.
    state.handles.metrics.event_call(match target {
        "AWSEvents.PutEvents" => "PutEvents",
        "AWSEvents.TestEventPattern" => "TestEventPattern",
        _ => "other",
    });
    authorized(state, headers, target, &request)?;
    match target {
        "AWSEvents.PutEvents" => put(state, &request),
        "AWSEvents.TestEventPattern" => test_pattern(&request),
        "" => Err(HttpError::NotFound("not found\n".into())),
        other => Err(json11(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("the emulator serves PutEvents and TestEventPattern, not {other}"),
        )),
    }
}

fn put(state: &EventBridge, request: &Value) -> Result<Response, HttpError> {
    let checked = put_events::check(request)
        .map_err(|e| json11(StatusCode::BAD_REQUEST, "ValidationException", e.0))?;
    let now = state.handles.clock.now_ms();
    let mut failed = 0;
    let mut results = Vec::with_capacity(checked.len());
    for entry in checked {
        let accepted = entry.and_then(|e| {
            if state.has_bus(&e.bus) {
                Ok(e)
            } else {
                // The API reference is silent on the code; this is the
                // exception EventBridge names for a missing bus elsewhere.
                Err(EntryError {
                    code: "ResourceNotFoundException",
                    message: format!("Event bus {} does not exist.", e.bus),
                })
            }
        });
        match accepted {
            Ok(e) => {
                let id = uuid::Uuid::new_v4().to_string();
                let event = super::envelope(
                    &id,
                    &e,
                    crate::template::ACCOUNT,
                    &state.handles.region,
                    now,
                );
                state.handles.metrics.event_put("accepted");
                state.route(&e.bus, &event);
                results.push(json!({"EventId": id}));
            }
            Err(e) => {
                failed += 1;
                state.handles.metrics.event_put("failed");
                tracing::info!(code = e.code, message = %e.message, "PutEvents entry refused");
                results.push(json!({"ErrorCode": e.code, "ErrorMessage": e.message}));
            }
        }
    }
    Ok(crate::http::json_11(
        StatusCode::OK,
        &json!({"FailedEntryCount": failed, "Entries": results}),
    ))
}

/// `TestEventPattern`: whether an event (with EventBridge's envelope
/// fields) matches a pattern.
fn test_pattern(request: &Value) -> Result<Response, HttpError> {
    let text = |k: &str| {
        request.get(k).and_then(Value::as_str).ok_or_else(|| {
            json11(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("1 validation error detected: Value null at '{k}' failed to satisfy constraint: Member must not be null"),
            )
        })
    };
    let pattern = Pattern::parse_str(text("EventPattern")?).map_err(|e| {
        json11(
            StatusCode::BAD_REQUEST,
            "InvalidEventPatternException",
            e.to_string(),
        )
    })?;
    let event: Value = serde_json::from_str(text("Event")?).map_err(|_| {
        json11(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Parameter Event is not valid.".into(),
        )
    })?;
    // "TestEventPattern": these fields are mandatory in the event.
    let mandatory = [
        "id",
        "account",
        "source",
        "time",
        "region",
        "resources",
        "detail-type",
    ];
    if let Some(missing) = mandatory.iter().find(|k| event.get(**k).is_none()) {
        return Err(json11(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!(
                "Parameter Event is not valid. Reason: Provided Event is missing field: {missing}"
            ),
        ));
    }
    Ok(crate::http::json_11(
        StatusCode::OK,
        &json!({"Result": pattern.matches(&event)}),
    ))
}

fn json11(status: StatusCode, kind: &'static str, message: String) -> HttpError {
    HttpError::Json11 {
        status,
        kind,
        message,
    }
}
