//! The emulator's HTTP surface as an axum [`Router`]: health, metrics, dev
//! tokens, `@connections`, and a fallback that takes WebSocket upgrades
//! and serves static files. The accept loop (`server`) feeds it.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State as Shared};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderValue, Method, StatusCode, header};
use roomcast_aws::auth::{DevClaims, MAX_USER_ID_LEN, RoomRights, mint_hs256};
use serde::Deserialize;
use serde_json::json;

use crate::apigateway::query::percent_decode;
use crate::http::{HttpError, json, respond};
use crate::state::State;

/// Every route. `ConnectInfo<SocketAddr>` must be in each request's
/// extensions (the accept loop puts it there).
pub(crate) fn app(state: Arc<State>) -> Router {
    // The AWS APIs (signed by SDK clients), behind SigV4 verification when
    // it is on; the emulator's own endpoints and the fallback are not.
    let aws = Router::new()
        .route(
            "/@connections",
            any(crate::apigateway::management::without_id),
        )
        .route(
            "/@connections/",
            any(crate::apigateway::management::without_id),
        )
        .route(
            "/@connections/{*id}",
            any(crate::apigateway::management::by_id),
        )
        .route(
            "/{stage}/@connections/",
            any(crate::apigateway::management::without_id),
        )
        .route(
            "/{stage}/@connections/{*id}",
            any(crate::apigateway::management::by_stage_and_id),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(crate::lambda::invoke_api::invoke),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::sigv4::middleware,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/dev/token", get(dev_token))
        .route("/_roomcast/events", get(crate::eventbridge::tail::feed))
        .route("/_roomcast/", get(crate::inspector::api::page))
        .route("/_roomcast/timeline", get(crate::inspector::api::timeline))
        .route(
            "/_roomcast/timeline/stream",
            get(crate::inspector::api::stream),
        )
        .route(
            "/_roomcast/connections",
            get(crate::inspector::api::connections),
        )
        .route("/_roomcast/info", get(crate::inspector::api::info))
        .route("/_roomcast/rooms", get(crate::inspector::api::rooms))
        .route(
            "/_roomcast/replay",
            axum::routing::post(crate::inspector::api::replay),
        )
        .route(
            "/_roomcast/faults",
            get(crate::faults::api::list)
                .post(crate::faults::api::add)
                .delete(crate::faults::api::clear),
        )
        .route(
            "/_roomcast/faults/{id}",
            axum::routing::delete(crate::faults::api::remove),
        )
        .route(
            "/_roomcast/connections/{id}/cut",
            axum::routing::post(crate::faults::api::cut),
        )
        .route(
            "/_roomcast/functions/{name}/cold",
            axum::routing::post(crate::faults::api::cold),
        )
        .merge(aws)
        .fallback(fallback)
        .with_state(state)
}

async fn healthz(Shared(state): Shared<Arc<State>>) -> Response {
    json(
        StatusCode::OK,
        &json!({"status": "ok", "connections": state.connections.len()}),
    )
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state.metrics.render(state.connections.len())
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
    Shared(state): Shared<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if crate::apigateway::upgrade::is_websocket(&req) {
        return crate::apigateway::upgrade::handle(state, peer, req).await;
    }
    // EventBridge's API is POST / with `X-Amz-Target: AWSEvents.*`; `/` is
    // also where WebSocket clients of a root-path API connect, so it is
    // told apart here rather than routed.
    if crate::eventbridge::api::is_eventbridge(&req) {
        let req = match crate::sigv4::verified(&state, req, crate::sigv4::EVENTS).await {
            Ok(req) => req,
            Err(refused) => return refused,
        };
        return crate::eventbridge::api::serve(state, req).await;
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
    Shared(state): Shared<Arc<State>>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, HttpError> {
    if !state.config.dev {
        return static_file(&state, "/dev/token").await;
    }
    let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let user = clean(q.user)
        .ok_or_else(|| HttpError::BadRequest("give ?user=ID (and optionally &name=NAME)".into()))?;
    if user.len() > MAX_USER_ID_LEN {
        return Err(HttpError::BadRequest("user is too long".into()));
    }
    let name = clean(q.name).unwrap_or_else(|| user.clone());
    let exp = state.now_ms() / 1000 + 12 * 3600;
    let claims = DevClaims {
        sub: user.clone(),
        name: name.clone(),
        exp,
        rooms: RoomRights::all(),
        direct: true,
        iss: None,
        aud: None,
    };
    let token = mint_hs256(&claims, state.dev_secret.as_bytes())
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &json!({"token": token, "user": user, "name": name, "exp": exp}),
    ))
}

async fn static_file(state: &State, path: &str) -> Result<Response, HttpError> {
    let not_found = || HttpError::NotFound("not found\n".into());
    let dir = state.config.static_dir.as_ref().ok_or_else(not_found)?;
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
