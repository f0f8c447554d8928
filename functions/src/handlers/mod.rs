//! The Lambda-facing layer: API Gateway events in, domain calls, API
//! Gateway responses out. The binaries in `src/bin/` and the local emulator
//! call exactly these functions.

use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::encodings::Body;
use tracing::Instrument;

use crate::auth::{self, AuthError, OriginPolicy, SUBPROTOCOL, Verify};
use crate::clock::Clock;
use crate::config::Config;
use crate::events::{Events, Outbox};
use crate::gateway::Gateway;
use crate::management::ManagementApi;
use crate::pacer::Pacer;
use crate::protocol::Sender;
use crate::routes::server::ServerError;
use crate::routes::{
    self, Context, FanoutError, PublishError, PublishReport, PublishTarget, RouteError, ShardReport,
};
use crate::shard::{Dispatch, Shard};
use crate::store::Store;

mod init;
mod server_api;

pub use init::{AppBuilder, InitError, LogFormat, init_tracing};
pub use server_api::{OPERATIONS, ServerRequest, server};

/// Why a handler failed. A failed invocation makes API Gateway answer 500
/// (on `$connect`: the upgrade fails); each variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event has no `requestContext.connectionId`: this function is not
    /// wired to a WebSocket route. Fix the integration.
    #[error("not a WebSocket event: requestContext.connectionId is missing")]
    MissingConnectionId,
    /// `$connect` arrived without Roomcast's authorizer context. Attach the
    /// authorizer to the `$connect` route.
    #[error("no authorizer context on $connect: {0}")]
    Unauthenticated(AuthError),
    /// The authorizer refuses the connect with API Gateway's 401: its
    /// message must be exactly `Unauthorized` (API Gateway, "Lambda
    /// authorizer": "To return a 401 Unauthorized response … the
    /// authorizer must fail with the error message Unauthorized"). The why
    /// is in the log line beside it.
    #[error("Unauthorized")]
    Unauthorized(AuthError),
    /// The Management API endpoint cannot be derived from the event. Set
    /// `ROOMCAST_CALLBACK_URL`.
    #[error("no Management API endpoint: set ROOMCAST_CALLBACK_URL")]
    NoEndpoint,
    /// The domain failed (the store, usually). The client retries.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A publish request was invalid or could not be stored. The message
    /// says which; invalid requests must be fixed by the caller.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A server API request names no known operation (`op`). Fix the
    /// caller. Lambda `errorType`: `UnknownOperation`.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// A server API request is malformed (the message names the field).
    /// Fix the caller. `errorType`: `InvalidRequest`.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A server API operation failed: invalid arguments (fix the caller)
    /// or the store (retry; every operation is safe to repeat).
    #[error(transparent)]
    Server(#[from] crate::routes::server::ServerError),
    /// The `fanout` function has nowhere to hand on leftover work: set
    /// `ROOMCAST_FANOUT_FUNCTION` (the template does).
    #[error("no fanout function: set ROOMCAST_FANOUT_FUNCTION")]
    NoDispatch,
    /// A shard's leftover work could not be re-queued. The invocation
    /// fails so that Lambda retries the shard; after its retries the shard
    /// goes to the failure destination.
    #[error(transparent)]
    Fanout(#[from] FanoutError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::MissingConnectionId => "MissingConnectionId",
            HandlerError::Unauthenticated(_) => "Unauthenticated",
            HandlerError::Unauthorized(_) => "Unauthorized",
            HandlerError::NoEndpoint => "NoEndpoint",
            HandlerError::Route(_) => "RouteFailed",
            HandlerError::Publish(PublishError::Invalid(_)) => "InvalidPublish",
            HandlerError::Publish(PublishError::Store(_)) => "StoreUnavailable",
            HandlerError::UnknownOperation(_) => "UnknownOperation",
            HandlerError::InvalidRequest(_) => "InvalidRequest",
            HandlerError::Server(ServerError::Invalid(_)) => "InvalidRequest",
            HandlerError::Server(ServerError::Store(_)) => "StoreUnavailable",
            HandlerError::NoDispatch => "NoDispatch",
            HandlerError::Fanout(_) => "RequeueFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Where a handler's gateway comes from.
pub enum Gateways {
    /// The Management API, one client per endpoint (production, emulator).
    Management(Box<ManagementApi>),
    /// One fixed gateway (tests).
    Fixed(Arc<dyn Gateway>),
}

/// Everything the handlers need, built once at init.
pub struct App {
    /// The store adapter.
    pub store: Arc<dyn Store>,
    /// The gateway adapter(s).
    pub gateways: Gateways,
    /// Token verification; `None` in functions that never verify.
    pub verifier: Option<Arc<dyn Verify>>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Limits and knobs.
    pub config: Config,
    /// The `Origin` allowlist (authorizer only).
    pub origins: OriginPolicy,
    /// Write CloudWatch EMF metric lines (on in Lambda, off elsewhere).
    pub emf: bool,
    /// Where large rooms' fan-out goes (`ROOMCAST_FANOUT_FUNCTION`);
    /// `None`: every fan-out is inline.
    pub dispatch: Option<Arc<dyn Dispatch>>,
    /// Where events go (`ROOMCAST_EVENT_BUS`); `None`: events off, and no
    /// EventBridge call is ever made.
    pub events: Option<Arc<dyn Events>>,
    /// Whether events carry clients' `data` (`ROOMCAST_EVENTS_DATA`).
    pub events_data: bool,
}

static EMF: crate::telemetry::Emf = crate::telemetry::Emf;
static NO_METRICS: roomcast_core::metrics::NoMetrics = roomcast_core::metrics::NoMetrics;

/// Where counts go: EMF lines in Lambda, nowhere elsewhere.
fn metrics_sink(emf: bool) -> &'static dyn roomcast_core::metrics::Metrics {
    if emf { &EMF } else { &NO_METRICS }
}

impl App {
    fn gateway_for(
        &self,
        ctx: &aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext,
    ) -> Result<Arc<dyn Gateway>, HandlerError> {
        self.gateway_at(ctx.domain_name.as_deref(), ctx.stage.as_deref())
    }

    fn gateway_at(
        &self,
        domain: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Arc<dyn Gateway>, HandlerError> {
        match &self.gateways {
            Gateways::Fixed(g) => Ok(g.clone()),
            Gateways::Management(api) => {
                let endpoint = api
                    .endpoint_for(domain, stage)
                    .ok_or(HandlerError::NoEndpoint)?;
                Ok(api.gateway(&endpoint))
            }
        }
    }

    /// A new invocation's outbox.
    fn outbox(&self) -> Outbox {
        Outbox::new(self.events.clone(), self.events_data)
    }

    fn context<'a>(&'a self, gateway: &'a dyn Gateway, events: &'a Outbox) -> Context<'a> {
        Context {
            store: &*self.store,
            gateway,
            clock: &*self.clock,
            config: &self.config,
            metrics: metrics_sink(self.emf),
            dispatch: self.dispatch.as_deref(),
            events,
        }
    }
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<String, HandlerError> {
    event
        .request_context
        .connection_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or(HandlerError::MissingConnectionId)
}

fn ok(body: Option<String>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = body.map(Body::Text);
    r
}

/// The REQUEST authorizer on `$connect`. A refused token is a `Request
/// Rejected` event (`invalid_token`, or `forbidden` for an `Origin` outside
/// the allowlist) when events are on.
pub async fn authorizer(
    verifier: &dyn Verify,
    origins: &OriginPolicy,
    events: Option<&Arc<dyn Events>>,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, HandlerError> {
    let (response, refused) = auth::authorize_with_reason(verifier, origins, &event).await;
    let Some(reason) = refused else {
        return Ok(response);
    };
    if let Some(events) = events {
        let outbox = Outbox::new(Some(events.clone()), true);
        let code = match reason {
            AuthError::OriginNotAllowed(_) => crate::protocol::ErrorCode::Forbidden,
            _ => crate::protocol::ErrorCode::InvalidToken,
        };
        outbox.record(|| {
            crate::events::Event::Rejected(crate::events::Rejected {
                code: code.as_str().to_owned(),
                reason: format!("connect refused: {reason}"),
                action: Some("connect".into()),
                connection_id: None,
                user: None,
                at: crate::clock::SystemClock.now_ms(),
            })
        });
        outbox.flush().await;
    }
    // A token whose subject no user can be told apart by is refused with
    // 401, not a Deny's 403 (logged with its request id by the check).
    if let AuthError::MalformedSubject(_) = reason {
        return Err(HandlerError::Unauthorized(reason));
    }
    Ok(response)
}

/// `$connect`: registers the connection under the authorizer's identity.
/// Echoes `Sec-WebSocket-Protocol: roomcast` when the client offered it,
/// which browsers require when they sent the token that way.
pub async fn connect(
    app: &App,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, HandlerError> {
    let id = connection_id(&event)?;
    let request_id = event.request_context.request_id.clone().unwrap_or_default();
    let span = tracing::info_span!("connect", connection_id = %id, request_id = %request_id);
    let work = async {
        let identity = auth::context_from_event(&event.request_context.authorizer.fields)
            .map_err(HandlerError::Unauthenticated)?;
        let outbox = app.outbox();
        let registered = routes::connect(
            &*app.store,
            &*app.clock,
            &app.config,
            &id,
            &identity,
            &outbox,
        )
        .await;
        outbox.flush().await;
        match registered {
            Ok(()) => {}
            // A revoked user: API Gateway refuses the upgrade with this
            // status ("Use $connect and $disconnect routes").
            Err(RouteError::Rejected(e)) => {
                let mut refused = ok(Some(e.message));
                refused.status_code = 403;
                return Ok(refused);
            }
            Err(e) => return Err(e.into()),
        }
        let mut response = ok(None);
        let offered = event
            .headers
            .get("sec-websocket-protocol")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.split(',').any(|p| p.trim() == SUBPROTOCOL));
        if offered {
            response.headers.insert(
                "sec-websocket-protocol",
                http::HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        Ok(response)
    }
    .instrument(span);
    measured(app, "connect", work).await
}

/// Runs one invocation, inside an EMF scope when enabled.
async fn measured<T>(app: &App, function: &str, work: impl std::future::Future<Output = T>) -> T {
    if app.emf {
        crate::telemetry::scope(function, work).await
    } else {
        work.await
    }
}

/// `$disconnect`: cleans up and tells the rooms.
pub async fn disconnect(
    app: &App,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, HandlerError> {
    let id = connection_id(&event)?;
    let ctx = &event.request_context;
    let span = tracing::info_span!(
        "disconnect",
        connection_id = %id,
        request_id = ctx.request_id.as_deref().unwrap_or_default(),
        status = ctx.disconnect_status_code,
        reason = ctx.disconnect_reason.as_deref().unwrap_or_default(),
    );
    let work = async {
        let gateway = app.gateway_for(ctx)?;
        let outbox = app.outbox();
        let closed = routes::Closed {
            code: ctx.disconnect_status_code,
            reason: ctx.disconnect_reason.clone(),
        };
        routes::disconnect_closed(&app.context(&*gateway, &outbox), &id, closed).await?;
        outbox.flush().await;
        Ok(ok(None))
    }
    .instrument(span);
    measured(app, "disconnect", work).await
}

/// `$default`: one client frame. The reply becomes the route response.
pub async fn message(
    app: &App,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, HandlerError> {
    let id = connection_id(&event)?;
    let ctx = &event.request_context;
    let span = tracing::info_span!(
        "message",
        connection_id = %id,
        request_id = ctx.request_id.as_deref().unwrap_or_default(),
    );
    let work = async {
        let gateway = app.gateway_for(ctx)?;
        // The authorizer context lets a connection whose item was lost be
        // registered again; it is optional here.
        let identity = auth::context_from_event(&ctx.authorizer.fields).ok();
        let frame = routes::Inbound {
            connection_id: &id,
            identity: identity.as_ref(),
            body: event.body.as_deref(),
            is_binary: event.is_base64_encoded,
            received_at: Some(ctx.request_time_epoch),
        };
        let outbox = app.outbox();
        let reply = routes::message(
            &app.context(&*gateway, &outbox),
            app.verifier.as_deref(),
            frame,
        )
        .await;
        let reply = reply.map(|f| f.to_json());
        Ok(ok(reply_then_events(&*gateway, &id, reply, &outbox).await))
    }
    .instrument(span);
    measured(app, "message", work).await
}

/// With events pending, the reply goes out through the gateway first and
/// the events after it, so that the client never waits on EventBridge;
/// `None` is then the route response. If the early post fails, the reply
/// stays the route response.
async fn reply_then_events(
    gateway: &dyn Gateway,
    connection_id: &str,
    reply: Option<String>,
    outbox: &Outbox,
) -> Option<String> {
    if !outbox.has_pending() {
        return reply;
    }
    let reply = match reply {
        Some(r) => match gateway.post(connection_id, r.as_bytes()).await {
            Ok(()) => None,
            Err(e) => {
                tracing::info!(connection_id, error = %e, "reply not posted early; it waits for the events");
                Some(r)
            }
        },
        None => None,
    };
    outbox.flush().await;
    reply
}

pub use crate::protocol::server_api::PublishRequest;

/// The publish function: invoked directly (Lambda Invoke, IAM) by the team's
/// backends. Needs `ROOMCAST_CALLBACK_URL`, since no event names the API.
pub async fn publish(app: &App, request: PublishRequest) -> Result<PublishReport, HandlerError> {
    use crate::protocol::{ErrorCode, FrameError};
    let target = match (request.room, request.user) {
        (Some(room), None) => PublishTarget::Room(room),
        (None, Some(user)) => PublishTarget::User(user),
        _ => {
            return Err(PublishError::Invalid(FrameError::new(
                ErrorCode::InvalidField,
                "give exactly one of room and user",
            ))
            .into());
        }
    };
    let gateway = app.gateway_at(None, None)?;
    let from = request.from.unwrap_or_else(|| Sender {
        user: "server".into(),
        name: "server".into(),
    });
    let outbox = app.outbox();
    let report = routes::publish(
        &app.context(&*gateway, &outbox),
        target,
        from,
        request.id.as_deref(),
        request.data,
    )
    .await?;
    outbox.flush().await;
    tracing::info!(
        seq = report.seq,
        delivered = report.delivery.delivered,
        gone = report.delivery.gone,
        failed = report.delivery.failed,
        duplicate = report.duplicate,
        "published"
    );
    Ok(report)
}

/// The `fanout` function: one shard of a large room's fan-out, invoked
/// asynchronously. `deadline` is the invocation's (Lambda's context).
pub async fn fanout(
    app: &App,
    shard: Shard,
    deadline: tokio::time::Instant,
) -> Result<ShardReport, HandlerError> {
    let span = tracing::info_span!("fanout", room = %shard.room, seq = shard.seq);
    let work = async {
        let dispatch = app.dispatch.as_deref().ok_or(HandlerError::NoDispatch)?;
        let gateway = app.gateway_at(None, None)?;
        let outbox = app.outbox().with_deadline(deadline);
        let ctx = app.context(&*gateway, &outbox);
        // This invocation's share of the stack's budget (see `pacer`).
        let pacer = Pacer::new(ctx.config.fanout.instance_budget());
        let report = routes::fanout(&ctx, dispatch, pacer.as_ref(), shard, deadline).await;
        outbox.flush().await;
        Ok(report?)
    }
    .instrument(span);
    measured(app, "fanout", work).await
}

/// Lambda's deadline (ms since the epoch) as an instant on tokio's clock.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    tokio::time::Instant::now()
        + std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests;

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateways").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}
