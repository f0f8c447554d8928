//! Start-up: each service built from its part of the template and its own
//! options, then wired to the others by small handles. Nothing here runs
//! on a request; this is the only file that knows every service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use roomcast_core::clock::{Clock, SystemClock};
use roomcast_core::gateway::Gateway;
use roomcast_core::store::Store;

use crate::apigateway::connections::Connections;
use crate::apigateway::options::GatewayMode;
use crate::apigateway::post::PostToConnection;
use crate::apigateway::service::ApiGateway;
use crate::apigateway::template::ApiSpec;
use crate::config::EmulatorConfig;
use crate::error::EmulatorError;
use crate::eventbridge::EventBridge;
use crate::faults::Faults;
use crate::iam::Iam;
use crate::inspector::Inspector;
use crate::lambda::build::FunctionBuilder;
use crate::lambda::environment::Shared;
use crate::lambda::invoke::FunctionEnv;
use crate::lambda::launch::Callback;
use crate::lambda::registry::FunctionPlugin;
use crate::lambda::service::Lambda;
use crate::metrics::Metrics;
use crate::server::Server;
use crate::server::front::Front;
use crate::sigv4::Signatures;
use crate::template::{Profile, Template};
use crate::timeline::Timeline;
use crate::tls::LocalTls;

mod settings;
use settings::{check_modes, dev_secret, dynamodb_proxy, front_door, injected_env, local_tls};

/// A built emulator: the accept loop's state and what `Emulator` reports.
pub(crate) struct Built {
    pub(crate) server: Arc<Server>,
    pub(crate) profile: Profile,
    pub(crate) stage: String,
    pub(crate) iam: Option<Arc<Iam>>,
    /// Process functions' way to DynamoDB, kept running while the emulator
    /// lives.
    pub(crate) _dynamodb_proxy: Option<crate::dynamodb::proxy::Proxy>,
}

/// The cross-cutting tools every service records, counts and is struck
/// through.
struct Tools {
    metrics: Arc<Metrics>,
    faults: Arc<Faults>,
    timeline: Arc<Timeline>,
    clock: Arc<dyn Clock>,
}

/// What the template says, read once.
struct Loaded {
    template: Template,
    api: ApiSpec,
    profile: Profile,
    region: String,
    sdk: aws_config::SdkConfig,
}

/// Builds every service, then the router and the accept loop's state.
pub(crate) async fn build(
    config: EmulatorConfig,
    addr: SocketAddr,
) -> Result<Built, EmulatorError> {
    crate::private_dir::ensure(&config.server.cache_dir)?;
    check_modes(&config)?;
    let dev_secret = dev_secret(&config)?;
    let loaded = load(&config).await?;
    let tools = Tools::new(config.dev.timeline_size);
    // In-process functions share this store; `store-error` faults strike
    // through it, and through the proxy that process functions reach
    // DynamoDB by.
    let store =
        crate::dynamodb::store::open(&config.dynamodb, &loaded.template, &loaded.sdk).await?;
    let iam = iam(&config, &loaded, &tools);
    let proxy = dynamodb_proxy(&config, &tools, &iam, &loaded.region).await?;
    let execute_api_host = format!(
        "{}.execute-api.{}.amazonaws.com",
        loaded.api.id, loaded.region
    );
    let tls = local_tls(&config, addr, &execute_api_host);
    let signatures = Arc::new(Signatures {
        verifier: config.server.verifier(),
        region: loaded.region.clone(),
        iam: iam.clone(),
    });
    let connections = Arc::new(Connections::default());
    let post = post_to_connection(&config, &loaded, &tools, &signatures, &iam, &connections);
    let env = function_env(
        &config,
        &loaded,
        &tools,
        &store,
        &iam,
        &post,
        &connections,
        addr,
        &dev_secret,
        &proxy,
        &tls,
    );
    let (api, lambda) = functions(&config, &loaded, &tools, &iam, addr, env).await?;
    let gateway = Arc::new(ApiGateway::new(
        api,
        config.gateway.clone(),
        connections.clone(),
        post,
        &tools.metrics,
        &tools.faults,
        &tools.timeline,
        &tools.clock,
    ));
    let eventbridge = eventbridge(&loaded, &tools, &iam, &lambda)?;
    log_loaded(&config, &gateway, &eventbridge);
    let inspector = inspector(&config, &loaded, &tools, connections, store, lambda.clone());
    let services = services(&gateway, lambda, &eventbridge, inspector, &signatures);
    let front = Arc::new(Front {
        gateway: gateway.clone(),
        eventbridge,
        signatures,
        static_dir: config.server.static_dir.clone(),
        dev_secret: config.dev.dev.then_some(dev_secret),
        faults: tools.faults,
        iam: iam.clone(),
        timeline: tools.timeline,
    });
    let server = Arc::new(Server {
        door: front_door(&config, addr, &execute_api_host),
        tls,
        handshakes: Arc::new(tokio::sync::Semaphore::new(
            config.server.max_pending_handshakes.max(1),
        )),
        header_read_timeout: config.server.header_read_timeout,
        shutdown_grace: config.server.shutdown_grace,
        gateway,
        router: crate::server::front::app(front, services),
    });
    Ok(Built {
        server,
        profile: loaded.profile,
        stage: loaded.api.stage,
        iam,
        _dynamodb_proxy: proxy,
    })
}

impl Tools {
    fn new(timeline_size: usize) -> Self {
        Self {
            metrics: Arc::new(Metrics::default()),
            faults: Arc::new(Faults::default()),
            timeline: Arc::new(Timeline::new(timeline_size)),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Process functions' roles, checked on the AWS calls they make (`None`
/// with `--no-iam`).
fn iam(config: &EmulatorConfig, loaded: &Loaded, tools: &Tools) -> Option<Arc<Iam>> {
    config.lambda.iam.then(|| {
        Arc::new(Iam::new(
            &loaded.template,
            &loaded.region,
            &loaded.template.functions().unwrap_or_default(),
            tools.timeline.clone(),
        ))
    })
}

/// EventBridge, reaching its function targets through Lambda's handle.
fn eventbridge(
    loaded: &Loaded,
    tools: &Tools,
    iam: &Option<Arc<Iam>>,
    lambda: &Arc<Lambda>,
) -> Result<Arc<EventBridge>, EmulatorError> {
    Ok(Arc::new(EventBridge::from_template(
        &loaded.template,
        crate::eventbridge::Handles {
            region: loaded.region.clone(),
            metrics: tools.metrics.clone(),
            iam: iam.clone(),
            clock: tools.clock.clone(),
            lambda: Arc::new(ThroughLambda(lambda.clone())),
        },
    )?))
}

fn log_loaded(config: &EmulatorConfig, gateway: &ApiGateway, eventbridge: &EventBridge) {
    tracing::info!(
        routes = ?gateway.api.routes.keys().collect::<Vec<_>>(),
        stage = %gateway.api.stage,
        authorizer = gateway.api.authorizer.is_some(),
        store = if config.dynamodb.endpoint.is_some() { "dynamodb" } else { "memory" },
        rules = ?eventbridge.rules().iter().map(|r| &r.name).collect::<Vec<_>>(),
        "template loaded"
    );
}

/// Each service's own routes.
fn services(
    gateway: &Arc<ApiGateway>,
    lambda: Arc<Lambda>,
    eventbridge: &Arc<EventBridge>,
    inspector: Arc<Inspector>,
    signatures: &Arc<Signatures>,
) -> axum::Router {
    axum::Router::new()
        .merge(crate::apigateway::management::router(
            gateway.clone(),
            signatures.clone(),
        ))
        .merge(crate::lambda::invoke_api::router(
            lambda,
            signatures.clone(),
        ))
        .merge(crate::eventbridge::tail::router(eventbridge.clone()))
        .merge(crate::inspector::router(inspector))
}

/// The one PostToConnection, shared by the `@connections` API and the
/// in-process gateway.
fn post_to_connection(
    config: &EmulatorConfig,
    loaded: &Loaded,
    tools: &Tools,
    signatures: &Arc<Signatures>,
    iam: &Option<Arc<Iam>>,
    connections: &Arc<Connections>,
) -> Arc<PostToConnection> {
    Arc::new(PostToConnection {
        connections: connections.clone(),
        max_message_bytes: config.gateway.max_message_bytes,
        api_arn: format!(
            "arn:aws:execute-api:{}:{}:{}/{}",
            loaded.region,
            crate::template::ACCOUNT,
            loaded.api.id,
            loaded.api.stage
        ),
        signatures: signatures.clone(),
        iam: iam.clone(),
        faults: tools.faults.clone(),
        metrics: tools.metrics.clone(),
        timeline: tools.timeline.clone(),
        clock: tools.clock.clone(),
    })
}

/// Every function built (a route's must build), the API with its routes,
/// and the Lambda service over them.
async fn functions(
    config: &EmulatorConfig,
    loaded: &Loaded,
    tools: &Tools,
    iam: &Option<Arc<Iam>>,
    addr: SocketAddr,
    env: FunctionEnv,
) -> Result<(crate::apigateway::service::Api, Arc<Lambda>), EmulatorError> {
    let mut builder = FunctionBuilder::new(loaded.template.clone(), format!("http://{addr}"), env);
    builder.build_binaries().await?;
    let api =
        crate::apigateway::service::Api::build(&loaded.api, &loaded.region, &mut builder).await?;
    let lambda = Arc::new(Lambda::new(
        builder.every_function().await?,
        loaded.region.clone(),
        config.lambda.async_retry_base,
        tools.metrics.clone(),
        iam.clone(),
    ));
    if config.lambda.watch {
        builder.watch();
    }
    Ok((api, lambda))
}

fn inspector(
    config: &EmulatorConfig,
    loaded: &Loaded,
    tools: &Tools,
    connections: Arc<Connections>,
    store: Arc<dyn Store>,
    lambda: Arc<Lambda>,
) -> Arc<Inspector> {
    Arc::new(Inspector {
        timeline: tools.timeline.clone(),
        connections,
        store,
        lambda,
        faults: tools.faults.clone(),
        clock: tools.clock.clone(),
        about: crate::inspector::About {
            api_id: loaded.api.id.clone(),
            stage: loaded.api.stage.clone(),
            dev_tokens: config.dev.dev,
            profile: loaded.profile.clone(),
        },
    })
}

/// EventBridge's way to its function targets: Lambda's asynchronous
/// queue, through the Lambda service's own handle.
struct ThroughLambda(Arc<Lambda>);

impl crate::eventbridge::LambdaTarget for ThroughLambda {
    fn invoke_async(&self, function: &str, event: serde_json::Value) -> bool {
        self.0.invoke_async(function, event)
    }
}

/// The template, with its region, table name and parameters.
async fn load(config: &EmulatorConfig) -> Result<Loaded, EmulatorError> {
    let sdk = crate::sdk::local_sdk_config().await;
    // One stack, one region: `AWS::Region`, the ARNs in events and the
    // functions' `AWS_REGION` all say the same.
    let region = sdk
        .region()
        .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let overrides: BTreeMap<String, String> = config
        .template
        .parameter_overrides
        .iter()
        .cloned()
        .collect();
    let template = Template::load(&config.template.template)?
        .with_table_name(config.dynamodb.table.clone())
        .with_region(region.clone())
        .with_parameters(&overrides)?;
    let api = template.websocket_api()?;
    let plugged: Vec<String> = config
        .lambda
        .plugins
        .iter()
        .flat_map(|p| p.binaries())
        .collect();
    let profile = template.profile(&plugged)?;
    Ok(Loaded {
        template,
        api,
        profile,
        region,
        sdk,
    })
}

/// What every function is built with.
#[allow(clippy::too_many_arguments)]
fn function_env(
    config: &EmulatorConfig,
    loaded: &Loaded,
    tools: &Tools,
    store: &Arc<dyn Store>,
    iam: &Option<Arc<Iam>>,
    post: &Arc<PostToConnection>,
    connections: &Arc<Connections>,
    addr: SocketAddr,
    dev_secret: &str,
    proxy: &Option<crate::dynamodb::proxy::Proxy>,
    tls: &Option<LocalTls>,
) -> FunctionEnv {
    let callback = tls.as_ref().map(|_| Callback {
        host: format!(
            "{}.execute-api.{}.amazonaws.com",
            loaded.api.id, loaded.region
        ),
        port: addr.port(),
    });
    let faulty: Arc<dyn Store> = Arc::new(crate::faults::store::FaultyStore::new(
        store.clone(),
        tools.faults.clone(),
        tools.timeline.clone(),
    ));
    let gateway: Option<Arc<dyn Gateway>> = (config.gateway.gateway == GatewayMode::InProcess)
        .then(|| {
            Arc::new(crate::apigateway::inprocess_gateway::InProcessGateway {
                connections: connections.clone(),
                post: post.clone(),
            }) as Arc<dyn Gateway>
        });
    FunctionEnv {
        plugins: std::iter::once(
            Arc::new(config.lambda.handlers.clone()) as Arc<dyn FunctionPlugin>
        )
        .chain(config.lambda.plugins.iter().cloned())
        .collect(),
        sdk: loaded.sdk.clone(),
        store: faulty,
        gateway,
        integration_timeout: config.gateway.integration_timeout,
        max_concurrency: config.lambda.max_concurrency,
        mode: config.lambda.functions,
        tools: crate::lambda::build::toolchain(
            &config.lambda,
            &config.template.template,
            &config.server.cache_dir,
            callback,
        ),
        shared: Shared {
            region: loaded.region.clone(),
            emulator_url: format!("http://{addr}"),
            dynamodb_endpoint: proxy.as_ref().map(|p| p.url.clone()),
            injected: injected_env(config, addr, &loaded.api.stage, dev_secret),
            trust: tls
                .as_ref()
                .map(|t| (t.ca_pem.clone(), t.bundle_pem.clone())),
            iam: iam.clone(),
            plugged: config
                .lambda
                .plugins
                .iter()
                .flat_map(|p| p.binaries())
                .collect(),
        },
        metrics: tools.metrics.clone(),
        faults: tools.faults.clone(),
        timeline: tools.timeline.clone(),
        failed_builds: BTreeMap::new(),
        watched: std::sync::Mutex::default(),
    }
}
