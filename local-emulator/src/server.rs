//! The accept loop and the plain-HTTP routes. WebSocket upgrades go to
//! [`crate::upgrade`], `@connections` to [`crate::management`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use roomcast_aws::auth::{DevClaims, RoomRights, mint_hs256};
use serde_json::json;
use tokio::net::TcpListener;

use crate::connections::CloseReason;
use crate::state::State;
use crate::util::{now_ms, parse_query, percent_decode};

pub(crate) type Body = Full<Bytes>;

/// A response with a body and content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

pub(crate) async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        // At the cap of connections still sending their first headers, stop
        // accepting (new ones wait in the kernel's backlog) until one sends
        // them or times out: half-sent requests cannot use up descriptors.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = state.handshakes.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(state.clone(), stream, peer, permit));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    shut_down(&state).await;
}

/// One HTTP connection. The handshake permit is given back as soon as the
/// first request's headers have arrived (or the connection ends); a client
/// that does not send them within the header-read timeout is disconnected.
async fn serve_connection(
    state: Arc<State>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let header_timeout = state.config.header_read_timeout;
    let held = std::sync::Mutex::new(Some(permit));
    let service = service_fn(move |req| {
        if let Ok(mut p) = held.lock() {
            p.take();
        }
        route(state.clone(), peer, req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
/// Closes every socket with 1001 and waits (bounded) for their `$disconnect`s.
async fn shut_down(state: &State) {
    state.shutting_down.store(true, Ordering::SeqCst);
    let open = state.connections.all();
    tracing::info!(connections = open.len(), "shutting down");
    for c in &open {
        c.request_close(CloseReason {
            code: 1001,
            reason: "Going away".into(),
        });
    }
    let deadline = tokio::time::Instant::now() + state.config.shutdown_grace;
    while (state.open_sockets.load(Ordering::SeqCst) > 0
        || state.pending_disconnects.load(Ordering::SeqCst) > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.pending_disconnects.load(Ordering::SeqCst);
    if left > 0 {
        tracing::warn!(
            pending = left,
            "shutdown grace elapsed with $disconnect handlers still running"
        );
    }
}

async fn route(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if crate::upgrade::is_websocket(&req) {
        return Ok(crate::upgrade::handle(state, peer, req).await);
    }
    if let Some(id) = management_id(&state, &path) {
        return Ok(crate::management::handle(&state, req, id).await);
    }
    Ok(match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => json_response(
            StatusCode::OK,
            &json!({"status": "ok", "connections": state.connections.len()}),
        ),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(state.connections.len()),
        ),
        (&Method::GET, "/dev/token") if state.config.dev => dev_token(&state, req.uri().query()),
        (&Method::GET | &Method::HEAD, _) => static_file(&state, &path).await,
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    })
}

/// `/@connections/{id}` or `/{stage}/@connections/{id}` → the decoded id
/// (possibly empty or malformed: the management handler judges it).
fn management_id(state: &State, path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/@connections")
        .or_else(|| path.strip_prefix(&format!("/{}/@connections", state.stage)))?;
    Some(percent_decode(
        rest.strip_prefix('/').unwrap_or(rest),
        false,
    ))
}

fn dev_token(state: &State, query: Option<&str>) -> Response<Body> {
    let q = parse_query(query);
    let first = |k: &str| {
        q.get(k)
            .and_then(|v| v.first())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let Some(user) = first("user") else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "give ?user=ID (and optionally &name=NAME)"}),
        );
    };
    if user.len() > roomcast_aws::auth::MAX_USER_ID_LEN {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "user is too long"}),
        );
    }
    let name = first("name").unwrap_or_else(|| user.clone());
    let exp = now_ms() / 1000 + 12 * 3600;
    let claims = DevClaims {
        sub: user.clone(),
        name: name.clone(),
        exp,
        rooms: RoomRights::all(),
        direct: true,
        iss: None,
        aud: None,
    };
    match mint_hs256(&claims, state.config.dev_secret.as_bytes()) {
        Ok(token) => json_response(
            StatusCode::OK,
            &json!({"token": token, "user": user, "name": name, "exp": exp}),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"message": e.to_string()}),
        ),
    }
}

async fn static_file(state: &State, path: &str) -> Response<Body> {
    let Some(dir) = &state.config.static_dir else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
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
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    }
    let full: PathBuf = dir.join(candidate);
    match tokio::fs::read(&full).await {
        Ok(bytes) => {
            let mut r = respond(StatusCode::OK, content_type(&full), bytes);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache"),
            );
            r
        }
        Err(_) if path == "/" => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!(
                "no demo page at {}; run from the repository root or pass --static-dir\n",
                full.display()
            ),
        ),
        Err(_) => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
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
