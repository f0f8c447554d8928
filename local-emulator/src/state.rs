//! What a running emulator holds, built once at start-up.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use aws_config::{BehaviorVersion, Region};
use roomcast_aws::dynamodb::{self, DynamoStore, StoreOptions};
use roomcast_core::gateway::Gateway;
use roomcast_core::store::Store;
use roomcast_core::store::memory::MemoryStore;

use roomcast_core::clock::{Clock, SystemClock};

use crate::activity::Activity;
use crate::apigateway::connections::Connections;
use crate::apigateway::connections::Peer;
use crate::apigateway::events::EventContext;
use crate::config::{EmulatorConfig, FunctionsMode};
use crate::eventbridge::EventBridge;
use crate::faults::Faults;
use crate::lambda::environment::Shared;
use crate::lambda::invoke::{Function, FunctionEnv, build_function};
use crate::lambda::launch::{Callback, Toolchain};
use crate::metrics::Metrics;
use crate::template::Template;
use crate::timeline::Timeline;
use crate::tls::LocalTls;
use crate::{Urls, error::EmulatorError};

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

pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) api_id: String,
    pub(crate) stage: String,
    /// The stage's `StageVariables`, in every event.
    pub(crate) stage_variables: BTreeMap<String, String>,
    /// The JSON path of `$request.body.<path>`, split on dots.
    pub(crate) selection_path: Vec<String>,
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) authorizer: Option<Authorizer>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutting_down: AtomicBool,
    /// `$disconnect` invocations in flight (shutdown waits for them).
    pub(crate) disconnects: Activity,
    /// Socket tasks still running, closing ones included (shutdown waits
    /// for them: a connection leaves the registry as soon as it starts
    /// closing, before its `$disconnect`).
    pub(crate) sockets: Activity,
    /// The time, for events and timers.
    pub(crate) clock: Arc<dyn Clock>,
    /// Connections still sending their first request's headers.
    pub(crate) handshakes: Arc<tokio::sync::Semaphore>,
    /// Every function of the template by logical id and by function name,
    /// for the Invoke API.
    pub(crate) functions: HashMap<String, Arc<Function>>,
    /// `AWS_REGION` of the functions and of their ARNs.
    pub(crate) region: String,
    /// TLS on the same port (`tls`), unless turned off or unavailable.
    pub(crate) tls: Option<LocalTls>,
    /// EventBridge: the template's buses and rules, and the live feed.
    pub(crate) eventbridge: EventBridge,
    /// Injected failures (`crate::faults`).
    pub(crate) faults: Arc<Faults>,
    /// What happened, for the inspector (`crate::inspector`).
    pub(crate) timeline: Arc<Timeline>,
    /// The store in-process functions share, read by the inspector's rooms
    /// (unwrapped: an injected store fault does not blind the inspector).
    pub(crate) store: Arc<dyn Store>,
    /// The HS256 secret of dev tokens (empty without `dev`).
    pub(crate) dev_secret: String,
    /// Roomcast's own template or a team's (the banner, `/_roomcast/info`).
    pub(crate) profile: crate::template::Profile,
    /// The checks every request passes first (`crate::guard`).
    pub(crate) door: crate::guard::FrontDoor,
    /// Process functions' roles, checked on the AWS calls they make
    /// (`None` with `--no-iam`).
    pub(crate) iam: Option<Arc<crate::iam::Iam>>,
    /// Process functions' way to DynamoDB, kept running while the state
    /// lives.
    _dynamodb_proxy: Option<crate::dynamodb::proxy::Proxy>,
}

impl State {
    /// Now, in ms since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A function by logical id or function name.
    pub(crate) fn lambda_function(&self, name: &str) -> Option<Arc<Function>> {
        self.functions.get(name).cloned()
    }

    /// A function name's ARN.
    pub(crate) fn function_arn(&self, name: &str) -> String {
        crate::lambda::environment::function_arn(&self.region, name)
    }

    /// The shared part of every event for one connection.
    pub(crate) fn events<'a>(&'a self, peer: &'a Peer) -> EventContext<'a> {
        EventContext {
            api_id: &self.api_id,
            stage: &self.stage,
            stage_variables: &self.stage_variables,
            region: &self.region,
            peer,
        }
    }
}

/// SDK settings for local endpoints (the emulator's `@connections`, moto):
/// requests are signed but not verified, so static credentials and a
/// default region do; real ones from the environment win.
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "roomcast-emulator",
        ));
    }
    loader.load().await
}

impl State {
    pub(crate) async fn build(
        config: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<Arc<Self>, EmulatorError> {
        crate::private_dir::ensure(&config.cache_dir)?;
        let dev_secret = match &config.dev_secret {
            Some(secret) => secret.clone(),
            None if config.dev => crate::dev_secret::load_or_create(&config.cache_dir)?,
            None => String::new(),
        };
        let sdk = local_sdk_config().await;
        // One stack, one region: `AWS::Region`, the ARNs in events and the
        // functions' `AWS_REGION` all say the same.
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let template = Template::load(&config.template)?
            .with_table_name(config.table.clone())
            .with_region(region.clone())
            .with_parameters(&config.parameter_overrides)?;
        let api = template.websocket_api()?;
        let profile = template.profile(crate::lambda::registry::BINARIES)?;
        let eventbridge = EventBridge::from_template(&template)?;
        let selection_path = api
            .route_selection
            .strip_prefix("$request.body.")
            .map(|p| p.split('.').map(str::to_owned).collect())
            .unwrap_or_default();
        let faults = Arc::new(Faults::default());
        let timeline = Arc::new(Timeline::new(config.timeline_size));
        // In-process functions share this store; `store-error` faults
        // strike through it, and through the proxy that process functions
        // reach DynamoDB by.
        let shared_store = store(&config, &template, &sdk).await?;
        let store: Arc<dyn Store> = Arc::new(crate::faults::store::FaultyStore::new(
            shared_store.clone(),
            faults.clone(),
            timeline.clone(),
        ));
        let iam = config.iam.then(|| {
            Arc::new(crate::iam::Iam::new(
                &template,
                &region,
                &template.functions().unwrap_or_default(),
                timeline.clone(),
            ))
        });
        let dynamodb_proxy = match &config.dynamodb_endpoint {
            Some(upstream) => Some(
                crate::dynamodb::proxy::start(
                    upstream,
                    crate::dynamodb::proxy::Checks {
                        faults: faults.clone(),
                        timeline: timeline.clone(),
                        iam: iam.clone(),
                        region: region.clone(),
                        upstream_timeout: None,
                    },
                )
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    source,
                })?,
            ),
            None => None,
        };
        let execute_api_host = format!("{}.execute-api.{region}.amazonaws.com", api.id);
        let tls = local_tls(&config, addr, &execute_api_host);
        let door = crate::guard::FrontDoor::new(
            &execute_api_host,
            &config.allowed_hosts,
            addr,
            config.expose_dev_apis,
        );
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                expose_dev_apis = config.expose_dev_apis,
                "listening beyond this machine: other machines can reach the WebSocket API and @connections; the inspector, replay, faults, /dev/token and the Invoke API answer this machine only unless --expose-dev-apis"
            );
        }

        check_modes(&config)?;
        let injected = injected_env(&config, addr, &api.stage, &dev_secret);
        let metrics = Arc::new(Metrics::default());
        let connections = Arc::new(Connections::default());
        let gateway: Option<Arc<dyn Gateway>> = if config.in_process_gateway {
            Some(Arc::new(
                crate::apigateway::inprocess_gateway::InProcessGateway {
                    connections: connections.clone(),
                    max_message_bytes: config.max_message_bytes,
                },
            ))
        } else {
            None
        };
        // One initialised function per logical id, shared by its routes.
        let mut functions = Functions {
            built: HashMap::new(),
            template: template.clone(),
            base: format!("http://{addr}"),
            env: FunctionEnv {
                extra: config.handlers.clone(),
                sdk,
                store,
                gateway,
                integration_timeout: config.integration_timeout,
                max_concurrency: config.max_concurrency,
                mode: config.functions,
                tools: toolchain(
                    &config,
                    tls.as_ref().map(|_| Callback {
                        host: execute_api_host.clone(),
                        port: addr.port(),
                    }),
                ),
                shared: Shared {
                    region: region.clone(),
                    emulator_url: format!("http://{addr}"),
                    dynamodb_endpoint: dynamodb_proxy.as_ref().map(|p| p.url.clone()),
                    injected,
                    trust: tls
                        .as_ref()
                        .map(|t| (t.ca_pem.clone(), t.bundle_pem.clone())),
                    iam: iam.clone(),
                },
                metrics: metrics.clone(),
                faults: faults.clone(),
                timeline: timeline.clone(),
                failed_builds: std::collections::BTreeMap::new(),
                watched: std::sync::Mutex::default(),
            },
        };
        functions.build_binaries().await?;
        let (routes, authorizer) = route_table(&api, &mut functions).await?;
        let all = every_function(&template, &mut functions).await?;
        if config.watch {
            functions.watch();
        }
        tracing::info!(
            routes = ?routes.keys().collect::<Vec<_>>(),
            stage = %api.stage,
            authorizer = authorizer.is_some(),
            store = if config.dynamodb_endpoint.is_some() { "dynamodb" } else { "memory" },
            rules = ?eventbridge.rules().iter().map(|r| &r.name).collect::<Vec<_>>(),
            "template loaded"
        );
        Ok(Arc::new(Self {
            api_id: api.id.clone(),
            stage: api.stage,
            stage_variables: api.stage_variables,
            selection_path,
            routes,
            authorizer,
            connections,
            metrics,
            shutting_down: AtomicBool::new(false),
            disconnects: Activity::default(),
            sockets: Activity::default(),
            clock: Arc::new(SystemClock),
            functions: all,
            region,
            tls,
            eventbridge,
            faults,
            timeline,
            store: shared_store,
            dev_secret,
            profile,
            door,
            iam,
            _dynamodb_proxy: dynamodb_proxy,
            handshakes: Arc::new(tokio::sync::Semaphore::new(
                config.max_pending_handshakes.max(1),
            )),
            config,
            addr,
        }))
    }

    pub(crate) fn urls(&self) -> Urls {
        let base = format!("http://{}", self.addr);
        let own = matches!(self.profile, crate::template::Profile::Roomcast { .. });
        Urls {
            websocket: format!("ws://{}/{}", self.addr, self.stage),
            management: format!("{base}/{}", self.stage),
            inspector: format!("{base}/_roomcast/"),
            demo: own.then(|| format!("{base}/")),
            dev_token: (own && self.config.dev)
                .then(|| format!("{base}/dev/token?user=alice&name=Alice")),
            profile: self.profile.clone(),
        }
    }
}

/// The emulator's TLS, with a certificate for every name a callback may
/// use: `localhost`, the loopback addresses, the bound address, and the
/// API's execute-api host. Without it (`--no-tls`, or a cache that cannot
/// be written) the port serves plain HTTP only, and the log says why.
fn local_tls(
    config: &EmulatorConfig,
    addr: SocketAddr,
    execute_api_host: &str,
) -> Option<LocalTls> {
    if !config.tls {
        return None;
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        execute_api_host.to_owned(),
    ];
    if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
        names.push(addr.ip().to_string());
    }
    let dir = config.cache_dir.join("tls");
    match LocalTls::load_or_create(&dir, &names) {
        Ok(tls) => {
            tracing::info!(ca = %tls.ca_pem.display(), host = execute_api_host, "TLS on the same port as HTTP (https://, wss://), with a certificate from the local CA");
            Some(tls)
        }
        Err(e) => {
            tracing::warn!(error = %e, "TLS is off: https:// callbacks will fail; fix the cache directory or pass --no-tls to silence this");
            None
        }
    }
}

/// `--functions process` needs a store every process reaches, and posts
/// through `@connections`, not the in-process gateway.
fn check_modes(config: &EmulatorConfig) -> Result<(), EmulatorError> {
    if config.functions == FunctionsMode::Process
        && (config.dynamodb_endpoint.is_none() || config.in_process_gateway)
    {
        return Err(EmulatorError::ProcessNeedsStore {
            conflict: if config.in_process_gateway {
                "; and drop --gateway in-process: processes post through @connections"
            } else {
                ""
            },
        });
    }
    Ok(())
}

/// Where process functions' programs come from: cargo's target directory
/// (`CARGO_TARGET_DIR`, else `target` beside the template).
fn toolchain(config: &EmulatorConfig, callback: Option<Callback>) -> Toolchain {
    let project = config
        .template
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || workspace_root(&project).join("target"),
        std::path::PathBuf::from,
    );
    Toolchain {
        project,
        target_dir,
        rebuild: config.build,
        profile: config.cargo_profile.clone(),
        python: config.python.clone(),
        cache: config.cache_dir.clone(),
        callback,
    }
}

/// Where cargo puts a project's `target`: at the root of the workspace the
/// project belongs to (the nearest ancestor whose Cargo.toml has a
/// `[workspace]`), else beside the project's own Cargo.toml, else beside
/// the template. So a template in a sub-folder of a workspace finds the
/// binaries cargo built.
fn workspace_root(project: &std::path::Path) -> std::path::PathBuf {
    let absolute = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let manifest = |dir: &std::path::Path| std::fs::read_to_string(dir.join("Cargo.toml")).ok();
    let mut package = None;
    for dir in absolute.ancestors() {
        if let Some(text) = manifest(dir) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return dir.to_path_buf();
            }
            package.get_or_insert_with(|| dir.to_path_buf());
        }
    }
    package.unwrap_or_else(|| project.to_path_buf())
}

/// Settings the emulator gives every function, beside the template's.
fn injected_env(
    config: &EmulatorConfig,
    addr: SocketAddr,
    stage: &str,
    dev_secret: &str,
) -> BTreeMap<String, String> {
    let mut injected = BTreeMap::new();
    injected.insert(
        "ROOMCAST_CALLBACK_URL".to_owned(),
        format!("http://{addr}/{stage}"),
    );
    // In-process functions reach the Invoke API (the fanout function's
    // shards) as process functions do.
    injected.insert(
        "AWS_ENDPOINT_URL_LAMBDA".to_owned(),
        format!("http://{addr}"),
    );
    injected.insert(
        "AWS_ENDPOINT_URL_EVENTBRIDGE".to_owned(),
        format!("http://{addr}"),
    );
    injected.insert(
        "ROOMCAST_IDLE_TIMEOUT_SECS".to_owned(),
        config.idle_timeout.as_secs().max(1).to_string(),
    );
    if config.dev {
        injected.insert("ROOMCAST_JWT_SECRET".to_owned(), dev_secret.to_owned());
    }
    injected
}

/// Every route of the API with its initialised function, and the
/// `$connect` authorizer if one is attached.
async fn route_table(
    api: &crate::template::ApiSpec,
    functions: &mut Functions,
) -> Result<(HashMap<String, Route>, Option<Authorizer>), EmulatorError> {
    let mut routes = HashMap::new();
    let mut authorizer = None;
    for (key, spec) in &api.routes {
        let function = functions.get(&spec.function).await?;
        if let Some(a) = &spec.authorizer {
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
                returns_response: spec.returns_response,
            },
        );
    }
    Ok((routes, authorizer))
}

/// Every function of the template, by logical id and function name. The
/// routes' functions must build; another one that cannot (an unsupported
/// runtime) is left out with a warning, and the Invoke API says 404.
async fn every_function(
    template: &Template,
    functions: &mut Functions,
) -> Result<HashMap<String, Arc<Function>>, EmulatorError> {
    let mut all = HashMap::new();
    for spec in template.functions()? {
        match functions.get(&spec).await {
            Ok(f) => {
                all.insert(spec.function_name.clone(), f.clone());
                all.insert(spec.logical_id.clone(), f);
            }
            Err(e) => {
                tracing::warn!(function = %spec.logical_id, error = %e, "not on a route and cannot run here; the Invoke API will not find it");
            }
        }
    }
    Ok(all)
}

struct Functions {
    built: HashMap<String, Arc<Function>>,
    env: FunctionEnv,
    /// For pointing the API's execute-api URLs at the emulator.
    template: Template,
    /// The emulator's `http://host:port`.
    base: String,
}

impl Functions {
    /// Starts hot reload of the process functions built so far.
    fn watch(&self) {
        let watched =
            std::mem::take(&mut *self.env.watched.lock().unwrap_or_else(|p| p.into_inner()));
        tracing::info!(
            functions = watched.len(),
            "watching process functions' code for changes"
        );
        tokio::spawn(crate::lambda::watch::run(
            watched,
            self.env.tools.clone(),
            std::time::Duration::from_millis(500),
        ));
    }

    /// Builds every cargo binary that runs as processes, in one cargo
    /// invocation, before any function starts.
    async fn build_binaries(&mut self) -> Result<(), EmulatorError> {
        let specs = self.template.functions()?;
        let processes: Vec<&crate::template::FunctionSpec> = specs
            .iter()
            .filter(|s| !crate::lambda::invoke::runs_in_process(s, &self.env))
            .collect();
        self.env.failed_builds =
            crate::lambda::launch::build_all(&processes, &self.env.tools).await;
        Ok(())
    }

    async fn get(
        &mut self,
        spec: &crate::template::FunctionSpec,
    ) -> Result<Arc<Function>, EmulatorError> {
        if let Some(f) = self.built.get(&spec.logical_id) {
            return Ok(f.clone());
        }
        let mut spec = spec.clone();
        self.template.localize(&mut spec, &self.base);
        let f = build_function(&spec, &self.env).await?;
        self.built.insert(spec.logical_id.clone(), f.clone());
        Ok(f)
    }
}

/// Creates every table of the template under the name its functions are
/// given (Roomcast's under `--table`), with its keys, indexes, TTL and
/// stream; a table that exists already is left as it is.
async fn create_tables(
    client: &dynamodb::Client,
    template: &Template,
) -> Result<(), EmulatorError> {
    for table in template.tables()? {
        let created = dynamodb::create_table(client, &table.name, &table.definition)
            .await
            .map_err(|e| EmulatorError::Table {
                table: table.name.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(table = %table.name, logical_id = %table.logical_id, created, "DynamoDB table ready");
    }
    Ok(())
}

async fn store(
    config: &EmulatorConfig,
    template: &Template,
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn Store>, EmulatorError> {
    let Some(endpoint) = &config.dynamodb_endpoint else {
        return Ok(Arc::new(MemoryStore::new()));
    };
    let client = dynamodb::client(sdk, Some(endpoint));
    crate::dynamodb::reach::reachable(&client, endpoint).await?;
    if config.create_table {
        create_tables(&client, template).await?;
    } else {
        let names: Vec<String> = template.tables()?.into_iter().map(|t| t.name).collect();
        crate::dynamodb::reach::tables_exist(&client, endpoint, &names).await?;
    }
    Ok(Arc::new(DynamoStore::new(
        client,
        config.table.clone(),
        StoreOptions::default(),
    )))
}
