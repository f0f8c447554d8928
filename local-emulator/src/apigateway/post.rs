//! PostToConnection, once: the `@connections` POST of the router, of the
//! accept loop's fast path and of the in-process gateway all come here, so
//! each applies IAM, injected faults, the size limit, Gone, the metrics
//! and the timeline alike. SigV4 is checked here too for the HTTP paths
//! (`verified_call`); an in-process post has no request to sign.
//!
//! API Gateway Developer Guide, "Use @connections commands in your backend
//! service": POST sends a message to the connection; 410 GoneException
//! when it is no longer connected; messages are at most 128 KB
//! (`PayloadTooLargeException`, "Amazon API Gateway quotas for configuring
//! and running a WebSocket API"); 429 `LimitExceededException` when
//! throttled.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::json;

use roomcast_core::clock::Clock;

use crate::apigateway::connections::{CloseReason, Connections, PostError};
use crate::faults::{FaultKind, Faults, Point, Subject};
use crate::http::HttpError;
use crate::iam::{Iam, Principal};
use crate::metrics::Metrics;
use crate::sigv4::Signatures;
use crate::timeline::Timeline;

/// Who made a call: the invocation's trace root (when the caller runs in
/// one) and the function whose role signed it (when IAM is checked).
#[derive(Default)]
pub(crate) struct Call {
    pub(crate) trace: Option<String>,
    pub(crate) caller: Option<Arc<Principal>>,
}

/// Why a post was not delivered, as API Gateway answers it.
#[derive(Debug)]
pub(crate) enum PostFailure {
    /// 410: the connection is not (or no longer) open.
    Gone,
    /// 413: over the message limit.
    TooLarge { limit: usize, injected: bool },
    /// 429: the client is not reading, or an injected throttle.
    Throttled { injected: bool },
    /// 403: the caller's role does not allow it.
    Denied(String),
    /// 400: the request's body could not be read.
    Unreadable,
}

/// What is posted: bytes in hand (a handler in the emulator's process), or
/// an HTTP request's body, read only once the post is allowed.
pub(crate) enum Payload<'a> {
    Bytes(&'a [u8]),
    Body(Body),
}

impl PostFailure {
    /// The metrics' and timeline's name for the outcome.
    fn result(&self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::TooLarge { .. } => "too_large",
            Self::Throttled { .. } => "throttled",
            Self::Denied(_) => "denied",
            Self::Unreadable => "bad_request",
        }
    }

    /// The answer API Gateway gives.
    pub(crate) fn into_http(self, id: &str) -> HttpError {
        let injected = "an injected post-status fault".to_owned();
        match self {
            Self::Gone => HttpError::gone(id),
            Self::TooLarge { limit, injected: i } => HttpError::Api {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                kind: "PayloadTooLargeException",
                message: if i {
                    injected
                } else {
                    format!("Message is larger than {limit} bytes")
                },
            },
            Self::Throttled { injected: i } => HttpError::Api {
                status: StatusCode::TOO_MANY_REQUESTS,
                kind: "LimitExceededException",
                message: if i {
                    injected
                } else {
                    "The client is not reading fast enough; the frame was dropped".into()
                },
            },
            Self::Denied(message) => HttpError::AccessDenied(message),
            Self::Unreadable => HttpError::Api {
                status: StatusCode::BAD_REQUEST,
                kind: "BadRequestException",
                message: "could not read the body".into(),
            },
        }
    }
}

/// Everything a post needs, and nothing else.
pub(crate) struct PostToConnection {
    pub(crate) connections: Arc<Connections>,
    /// API Gateway's message limit.
    pub(crate) max_message_bytes: usize,
    /// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}`: what IAM
    /// checks a caller against.
    pub(crate) api_arn: String,
    pub(crate) signatures: Arc<Signatures>,
    pub(crate) iam: Option<Arc<Iam>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) timeline: Arc<Timeline>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl PostToConnection {
    /// Sends `payload` to connection `id`.
    pub(crate) async fn post(
        &self,
        id: &str,
        payload: Payload<'_>,
        call: &Call,
    ) -> Result<(), PostFailure> {
        let outcome = self.deliver(id, payload, call).await;
        let result = outcome.as_ref().map_or_else(PostFailure::result, |()| "ok");
        self.record(&Method::POST, id, result, call.trace.as_deref());
        if let Err(e) = &outcome
            && !matches!(e, PostFailure::Gone)
        {
            tracing::info!(connection_id = %id, method = "POST", error = ?e, "@connections call refused");
        }
        outcome
    }

    async fn deliver(
        &self,
        id: &str,
        payload: Payload<'_>,
        call: &Call,
    ) -> Result<(), PostFailure> {
        self.authorize(&Method::POST, id, call.caller.as_deref())
            .map_err(PostFailure::Denied)?;
        self.injected(id).await?;
        let read;
        let payload = match payload {
            Payload::Bytes(b) => b,
            Payload::Body(body) => {
                read = self.read_body(body).await?;
                &read[..]
            }
        };
        if payload.len() > self.max_message_bytes {
            return Err(PostFailure::TooLarge {
                limit: self.max_message_bytes,
                injected: false,
            });
        }
        self.connections.post(id, payload).map_err(|e| match e {
            PostError::Throttled => PostFailure::Throttled { injected: false },
            PostError::Gone => PostFailure::Gone,
        })
    }

    /// IAM's check of a function's call (API Gateway Developer Guide, "Use
    /// @connections commands in your backend service": the caller needs
    /// `execute-api:ManageConnections` on
    /// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/@connections/{id}`).
    pub(crate) fn authorize(
        &self,
        method: &Method,
        id: &str,
        caller: Option<&Principal>,
    ) -> Result<(), String> {
        let (Some(iam), Some(caller)) = (&self.iam, caller) else {
            return Ok(());
        };
        let resource = format!("{}/{method}/@connections/{id}", self.api_arn);
        iam.authorize(
            caller,
            &[crate::iam::Request::new(
                "execute-api:ManageConnections",
                resource,
            )],
        )
        .map_err(|d| d.message)
    }

    /// A fault that strikes this post: the status it answers instead (as
    /// API Gateway answers it), or a stall before it is served.
    async fn injected(&self, id: &str) -> Result<(), PostFailure> {
        if self.faults.none_armed() {
            return Ok(());
        }
        let user = self
            .connections
            .get(id)
            .and_then(|c| c.authorizer["principalId"].as_str().map(str::to_owned));
        let subject = Subject {
            connection: Some(id),
            user: user.as_deref(),
            function: None,
        };
        match self.faults.take(Point::Post, subject) {
            // A 410 says the connection is gone: it is cut too (no close
            // frame), as the network failure behind a real 410 would have.
            Some(FaultKind::PostStatus { status: 410 }) => {
                self.connections.close(id, CloseReason::abnormal());
                Err(PostFailure::Gone)
            }
            Some(FaultKind::PostStatus { status: 413 }) => Err(PostFailure::TooLarge {
                limit: self.max_message_bytes,
                injected: true,
            }),
            Some(FaultKind::PostStatus { .. }) => Err(PostFailure::Throttled { injected: true }),
            Some(FaultKind::PostStall { ms }) => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Counts an `@connections` call and puts it on the timeline (posts,
    /// the high-rate call, only while an inspector watches).
    pub(crate) fn record(&self, method: &Method, id: &str, result: &str, trace: Option<&str>) {
        self.metrics.api_call(method.as_str(), result);
        if method != Method::POST || self.timeline.watching() {
            self.timeline.record(
                "connections-api",
                self.clock.now_ms(),
                json!({"method": method.as_str(), "connectionId": id, "result": result, "traceId": trace}),
            );
        }
    }

    /// An HTTP call's request, its signature checked when verification is
    /// on (else the refusal to send back), with who made it.
    pub(crate) async fn verified_call(
        &self,
        req: http::Request<Body>,
    ) -> Result<(http::request::Parts, Body, Call), Response> {
        let req = crate::sigv4::verified(&self.signatures, req, crate::sigv4::EXECUTE_API).await?;
        let (parts, body) = req.into_parts();
        let call = Call {
            trace: trace_root(&parts.headers),
            caller: self.iam.as_ref().and_then(|iam| iam.caller(&parts.headers)),
        };
        Ok((parts, body, call))
    }

    /// Reads a POST's body, at most one byte past the limit (enough to
    /// refuse it as too large without holding more).
    async fn read_body(&self, body: Body) -> Result<Bytes, PostFailure> {
        use http_body_util::{BodyExt, Limited};
        match Limited::new(body, self.max_message_bytes + 1)
            .collect()
            .await
        {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(PostFailure::TooLarge {
                limit: self.max_message_bytes,
                injected: false,
            }),
            Err(_) => Err(PostFailure::Unreadable),
        }
    }
}

/// The caller's trace root, when it runs in a Lambda invocation: the SDKs
/// send the invocation's trace header with each call (recursion
/// detection), which ties the call to the invocation on the timeline.
pub(crate) fn trace_root(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::lambda::log_text::trace_root)
}
