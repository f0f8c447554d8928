//! `GET /_roomcast/events`: every event the emulator's EventBridge accepts,
//! as it arrives, one JSON object per line, for `roomcast events`. A reader
//! that falls more than the feed's capacity behind is told how many it
//! missed (`{"skipped": N}`) and goes on.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Shared;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::broadcast::error::RecvError;

use super::EventBridge;

/// The feed as a streamed response.
/// `GET /_roomcast/events`: the live feed, one event per line.
pub(crate) fn router(eventbridge: Arc<EventBridge>) -> axum::Router {
    axum::Router::new()
        .route("/_roomcast/events", axum::routing::get(feed))
        .with_state(eventbridge)
}

async fn feed(Shared(state): Shared<Arc<EventBridge>>) -> Response {
    let rx = state.subscribe();
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let line = match rx.recv().await {
            Ok(event) => format!("{event}\n"),
            Err(RecvError::Lagged(n)) => format!("{{\"skipped\":{n}}}\n"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(line), rx))
    });
    let mut r = Response::new(Body::from_stream(lines));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
