//! The inspector: the timeline (`crate::timeline`), the open connections
//! and the rooms, served with a page at `/_roomcast/` that shows them,
//! replays invocations and sets faults (docs/inspector.md). A developer's
//! tool over the services: it reads them through the handles below and
//! nothing reads it.

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use roomcast_core::clock::Clock;
use roomcast_core::store::Store;

use crate::apigateway::connections::Connections;
use crate::faults::Faults;
use crate::lambda::service::Lambda;
use crate::template::Profile;
use crate::timeline::Timeline;

pub(crate) mod api;
pub(crate) mod faults_api;

/// What the inspector reads and sets.
pub(crate) struct Inspector {
    pub(crate) timeline: Arc<Timeline>,
    pub(crate) connections: Arc<Connections>,
    /// The store in-process functions share, for the rooms (unwrapped: an
    /// injected store fault does not blind the inspector).
    pub(crate) store: Arc<dyn Store>,
    /// For replay and forced cold starts.
    pub(crate) lambda: Arc<Lambda>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) clock: Arc<dyn Clock>,
    /// What `/_roomcast/info` says of the emulator.
    pub(crate) about: About,
}

/// The emulator as `/_roomcast/info` describes it.
pub(crate) struct About {
    pub(crate) api_id: String,
    pub(crate) stage: String,
    pub(crate) dev_tokens: bool,
    pub(crate) profile: Profile,
}

impl Inspector {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The inspector's page and API under `/_roomcast/`.
pub(crate) fn router(inspector: Arc<Inspector>) -> Router {
    Router::new()
        .route("/_roomcast/", get(api::page))
        .route("/_roomcast/timeline", get(api::timeline))
        .route("/_roomcast/timeline/stream", get(api::stream))
        .route("/_roomcast/connections", get(api::connections))
        .route("/_roomcast/info", get(api::info))
        .route("/_roomcast/rooms", get(api::rooms))
        .route("/_roomcast/replay", post(api::replay))
        .route(
            "/_roomcast/faults",
            get(faults_api::list)
                .post(faults_api::add)
                .delete(faults_api::clear),
        )
        .route("/_roomcast/faults/{id}", delete(faults_api::remove))
        .route("/_roomcast/connections/{id}/cut", post(faults_api::cut))
        .route("/_roomcast/functions/{name}/cold", post(faults_api::cold))
        .with_state(inspector)
}
