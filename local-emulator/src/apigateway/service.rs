//! API Gateway's own state: the API (id, stage, routes, authorizer), the
//! open connections, its limits, and the handles it records and counts
//! through. Built once at start-up from the template's API and Lambda's
//! functions; shared by the handshake, each socket and `@connections`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use roomcast_core::clock::Clock;

use crate::activity::Activity;
use crate::apigateway::connections::{CloseReason, Connections, Peer};
use crate::apigateway::events::EventContext;
use crate::apigateway::options::GatewayOptions;
use crate::apigateway::post::PostToConnection;
use crate::apigateway::template::ApiSpec;
use crate::error::EmulatorError;
use crate::faults::Faults;
use crate::lambda::build::FunctionBuilder;
use crate::lambda::invoke::Function;
use crate::metrics::Metrics;
use crate::timeline::Timeline;

/// A route, ready to invoke.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) key: String,
    pub(crate) function: Arc<Function>,
    pub(crate) returns_response: bool,
}

/// The `$connect` authorizer, ready to invoke.
pub(crate) struct Authorizer {
    pub(crate) function: Arc<Function>,
    pub(crate) identity_sources: Vec<String>,
}

/// The API as deployed: what every event names.
pub(crate) struct Api {
    pub(crate) id: String,
    pub(crate) stage: String,
    /// The stage's `StageVariables`, in every event.
    pub(crate) stage_variables: BTreeMap<String, String>,
    /// The stack's region, for the ARNs.
    pub(crate) region: String,
    /// The JSON path of `$request.body.<path>`, split on dots.
    pub(crate) selection_path: Vec<String>,
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) authorizer: Option<Authorizer>,
}

pub(crate) struct ApiGateway {
    pub(crate) api: Api,
    pub(crate) options: GatewayOptions,
    pub(crate) connections: Arc<Connections>,
    /// The one way a frame reaches a connection (`post`).
    pub(crate) post: Arc<PostToConnection>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) timeline: Arc<Timeline>,
    /// The time, for events and timers.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) shutting_down: AtomicBool,
    /// `$disconnect` invocations in flight (shutdown waits for them).
    pub(crate) disconnects: Activity,
    /// Socket tasks still running, closing ones included (shutdown waits
    /// for them: a connection leaves the registry as soon as it starts
    /// closing, before its `$disconnect`).
    pub(crate) sockets: Activity,
}

impl Api {
    /// The template's API with every route's function (and the `$connect`
    /// authorizer's) built: a route whose function cannot run is an error.
    pub(crate) async fn build(
        spec: &ApiSpec,
        region: &str,
        functions: &mut FunctionBuilder,
    ) -> Result<Self, EmulatorError> {
        let mut routes = HashMap::new();
        let mut authorizer = None;
        for (key, route) in &spec.routes {
            let function = functions.get(&route.function).await?;
            if let Some(a) = &route.authorizer {
                authorizer = Some(Authorizer {
                    function: functions.get(&a.function).await?,
                    identity_sources: a.identity_sources.clone(),
                });
            }
            routes.insert(
                key.clone(),
                Route {
                    key: key.clone(),
                    function,
                    returns_response: route.returns_response,
                },
            );
        }
        Ok(Self {
            id: spec.id.clone(),
            stage: spec.stage.clone(),
            stage_variables: spec.stage_variables.clone(),
            region: region.to_owned(),
            selection_path: spec
                .route_selection
                .strip_prefix("$request.body.")
                .map(|p| p.split('.').map(str::to_owned).collect())
                .unwrap_or_default(),
            routes,
            authorizer,
        })
    }
}

impl ApiGateway {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        api: Api,
        options: GatewayOptions,
        connections: Arc<Connections>,
        post: Arc<PostToConnection>,
        metrics: &Arc<Metrics>,
        faults: &Arc<Faults>,
        timeline: &Arc<Timeline>,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        Self {
            api,
            options,
            connections,
            post,
            metrics: metrics.clone(),
            faults: faults.clone(),
            timeline: timeline.clone(),
            clock: clock.clone(),
            shutting_down: AtomicBool::new(false),
            disconnects: Activity::default(),
            sockets: Activity::default(),
        }
    }

    /// Now, in ms since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The shared part of every event for one connection.
    pub(crate) fn events<'a>(&'a self, peer: &'a Peer) -> EventContext<'a> {
        EventContext {
            api_id: &self.api.id,
            stage: &self.api.stage,
            stage_variables: &self.api.stage_variables,
            region: &self.api.region,
            peer,
        }
    }

    /// Refuses new connections, closes every socket with 1001 and waits
    /// (up to `grace`) for their `$disconnect`s.
    pub(crate) async fn shut_down(&self, grace: std::time::Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let open = self.connections.all();
        tracing::info!(connections = open.len(), "shutting down");
        for c in &open {
            c.request_close(CloseReason::going_away());
        }
        let settled = async {
            self.sockets.idle().await;
            self.disconnects.idle().await;
        };
        let _ = tokio::time::timeout(grace, settled).await;
        let left = self.disconnects.count();
        if left > 0 {
            tracing::warn!(
                pending = left,
                "shutdown grace elapsed with $disconnect handlers still running"
            );
        }
    }
}
