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

use crate::state::State;

/// The feed as a streamed response.
pub(crate) async fn feed(Shared(state): Shared<Arc<State>>) -> Response {
    let rx = state.eventbridge.subscribe();
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
