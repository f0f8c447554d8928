//! The emulator's HTTP surface as one axum [`Router`]: each service's
//! routes merged with the front's own (health, metrics, dev tokens, and a
//! fallback that takes WebSocket upgrades, EventBridge's `POST /` and
//! static files). The accept loop (`server`) feeds it.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State as Shared};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, Method, StatusCode, header};
use roomcast_aws::auth::{DevClaims, MAX_USER_ID_LEN, RoomRights, mint_hs256};
use serde::Deserialize;
use serde_json::json;

use crate::apigateway::query::percent_decode;
use crate::apigateway::service::ApiGateway;
use crate::eventbridge::EventBridge;
use crate::faults::Faults;
use crate::http::{HttpError, json, respond};
use crate::iam::Iam;
use crate::sigv4::Signatures;
use crate::timeline::Timeline;

/// What the front serves besides the services' own routes: health,
/// metrics, dev tokens, WebSocket upgrades, EventBridge's `POST /`, and the
/// demo's files.
pub(crate) struct Front {
    pub(crate) gateway: Arc<ApiGateway>,
    pub(crate) eventbridge: Arc<EventBridge>,
    /// Checks EventBridge calls' signatures.
    pub(crate) signatures: Arc<Signatures>,
    /// Static files served at `/` (the demo), if any.
    pub(crate) static_dir: Option<PathBuf>,
    /// The HS256 secret of dev tokens; `None` without dev mode.
    pub(crate) dev_secret: Option<String>,
    /// What `/metrics` shows besides the counters.
    pub(crate) faults: Arc<Faults>,
    pub(crate) iam: Option<Arc<Iam>>,
    pub(crate) timeline: Arc<Timeline>,
}

/// Every route: each service's own, and the front's. `ConnectInfo<SocketAddr>`
/// must be in each request's extensions (the accept loop puts it there).
pub(crate) fn app(front: Arc<Front>, services: Router) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/dev/token", get(dev_token))
        .fallback(fallback)
        .with_state(front)
        .merge(services)
}

async fn healthz(Shared(state): Shared<Arc<Front>>) -> Response {
    json(
        StatusCode::OK,
        &json!({"status": "ok", "connections": state.gateway.connections.len()}),
    )
}

async fn metrics(Shared(state): Shared<Arc<Front>>) -> Response {
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state
            .gateway
            .metrics
            .render(state.gateway.connections.len())
            + &state.faults.render_metrics()
            + &state
                .iam
                .as_ref()
                .map(|iam| iam.render_metrics())
                .unwrap_or_default()
            + &format!(
                "# HELP roomcast_timeline_entries Entries the inspector's timeline keeps now.\n# TYPE roomcast_timeline_entries gauge\nroomcast_timeline_entries {}\n",
                state.timeline.len()
            ),
    )
}

/// WebSocket upgrades on any path (the handshake judges the path, as API
/// Gateway does), else static files.
async fn fallback(
    Shared(state): Shared<Arc<Front>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if crate::apigateway::upgrade::is_websocket(&req) {
        return crate::apigateway::upgrade::handle(state.gateway.clone(), peer, req).await;
    }
    // EventBridge's API is POST / with `X-Amz-Target: AWSEvents.*`; `/` is
    // also where WebSocket clients of a root-path API connect, so it is
    // told apart here rather than routed.
    if crate::eventbridge::api::is_eventbridge(&req) {
        let req = match crate::sigv4::verified(&state.signatures, req, crate::sigv4::EVENTS).await {
            Ok(req) => req,
            Err(refused) => return refused,
        };
        return crate::eventbridge::api::serve(&state.eventbridge, req).await;
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return static_file(&state, req.uri().path())
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    HttpError::NotFound("not found\n".into()).into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    user: Option<String>,
    name: Option<String>,
}

async fn dev_token(
    Shared(state): Shared<Arc<Front>>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, HttpError> {
    let Some(secret) = &state.dev_secret else {
        return static_file(&state, "/dev/token").await;
    };
    let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let user = clean(q.user)
        .ok_or_else(|| HttpError::BadRequest("give ?user=ID (and optionally &name=NAME)".into()))?;
    if user.len() > MAX_USER_ID_LEN {
        return Err(HttpError::BadRequest("user is too long".into()));
    }
    let name = clean(q.name).unwrap_or_else(|| user.clone());
    let exp = state.gateway.now_ms() / 1000 + 12 * 3600;
    let claims = DevClaims {
        sub: user.clone(),
        name: name.clone(),
        exp,
        rooms: RoomRights::all(),
        direct: true,
        iss: None,
        aud: None,
    };
    let token =
        mint_hs256(&claims, secret.as_bytes()).map_err(|e| HttpError::Internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &json!({"token": token, "user": user, "name": name, "exp": exp}),
    ))
}

async fn static_file(state: &Front, path: &str) -> Result<Response, HttpError> {
    let not_found = || HttpError::NotFound("not found\n".into());
    let dir = state.static_dir.as_ref().ok_or_else(not_found)?;
    let relative = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    let relative = percent_decode(relative, false);
    // Only plain components: no `..`, no absolute paths.
    let candidate = Path::new(&relative);
    if candidate
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(not_found());
    }
    let full: PathBuf = dir.join(candidate);
    match tokio::fs::read(&full).await {
        Ok(bytes) => {
            let mut r = respond(StatusCode::OK, content_type(&full), bytes);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(r)
        }
        Err(_) if path == "/" => Err(HttpError::NotFound(format!(
            "no demo page at {}; run from the repository root or pass --static-dir\n",
            full.display()
        ))),
        Err(_) => Err(not_found()),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
