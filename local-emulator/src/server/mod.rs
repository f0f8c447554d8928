//! The accept loop: HTTP/1 connections, plain or TLS, with a header-read
//! timeout and a cap on half-sent handshakes, each checked at the front
//! door (`crate::guard`) and served by the router (`front::app`), or for
//! a well-formed `@connections` POST by the gateway directly; and graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use futures::future::Either;
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::apigateway::management;
use crate::apigateway::service::ApiGateway;
use crate::guard::FrontDoor;
use crate::header_case::{Head, Recording};
use crate::tls::LocalTls;

pub(crate) mod front;
pub(crate) mod options;

/// The accept loop's own state.
pub(crate) struct Server {
    pub(crate) door: FrontDoor,
    /// TLS on the same port, unless turned off or unavailable.
    pub(crate) tls: Option<LocalTls>,
    /// Connections still sending their first request's headers.
    pub(crate) handshakes: Arc<tokio::sync::Semaphore>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    /// For the `@connections` POST fast path and shutdown.
    pub(crate) gateway: Arc<ApiGateway>,
    pub(crate) router: axum::Router,
}

pub(crate) async fn serve(
    state: Arc<Server>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let router = state.router.clone();
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
                    tokio::spawn(serve_connection(state.clone(), router.clone(), stream, peer, permit));
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
    state.gateway.shut_down(state.shutdown_grace).await;
}

/// One connection, plain HTTP or TLS (`tls`): told apart by its first
/// byte, which for TLS is a handshake record (0x16) and for HTTP a method's
/// first letter. The first byte and the TLS handshake must both arrive
/// within the header-read timeout, like the request's head.
async fn serve_connection(
    state: Arc<Server>,
    router: axum::Router,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let header_timeout = state.header_read_timeout;
    let Some(tls) = state.tls.clone() else {
        return serve_http(state, router, stream, peer, permit).await;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => return serve_http(state, router, stream, peer, permit).await,
        // Closed, failed, or silent for the whole header-read timeout.
        _ => return,
    }
    match tokio::time::timeout(header_timeout, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(state, router, stream, peer, permit).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not finished within the header-read timeout")
        }
    }
}

/// The content type of a TLS handshake record: the first byte a TLS
/// client sends.
const TLS_HANDSHAKE: u8 = 0x16;

/// One HTTP connection. The handshake permit is given back as soon as the
/// first request's headers have arrived (or the connection ends); a client
/// that does not send them within the header-read timeout is disconnected.
async fn serve_http<S>(
    state: Arc<Server>,
    router: axum::Router,
    stream: S,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = state.header_read_timeout;
    let held = std::sync::Mutex::new(Some(permit));
    let head = Head::default();
    let recorded = head.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let first = held.lock().ok().and_then(|mut p| p.take()).is_some();
        if first {
            // hyper calls us once the head is read: it is all recorded.
            req.extensions_mut().insert(recorded.original_names());
        }
        if let Err(refused) = state
            .door
            .check(req.method(), req.uri().path(), req.headers(), peer)
        {
            tracing::info!(%peer, method = %req.method(), path = %req.uri().path(), error = %refused, "request refused at the door");
            return Either::Left(std::future::ready(Ok(refused.into_response())));
        }
        let post = management::post_id(&state.gateway.api.stage, req.method(), req.uri().path())
            .map(std::borrow::Cow::into_owned);
        Either::Right(match post {
            Some(id) => Either::Left(management::post_without_router(
                state.gateway.clone(),
                req,
                id,
            )),
            None => {
                req.extensions_mut().insert(ConnectInfo(peer));
                Either::Right(router.clone().oneshot(req))
            }
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(Recording::new(stream, head)), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
