//! Start-up settings derived from the config: checks of the options
//! together, the dev secret, TLS, the front door, the DynamoDB
//! pass-through and the settings every function is given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::apigateway::options::GatewayMode;
use crate::config::EmulatorConfig;
use crate::error::EmulatorError;
use crate::iam::Iam;
use crate::lambda::options::FunctionsMode;
use crate::tls::LocalTls;

use super::Tools;

/// The emulator's TLS, with a certificate for every name a callback may
/// use: `localhost`, the loopback addresses, the bound address, and the
/// API's execute-api host. Without it (`--no-tls`, or a cache that cannot
/// be written) the port serves plain HTTP only, and the log says why.
pub(super) fn local_tls(
    config: &EmulatorConfig,
    addr: SocketAddr,
    execute_api_host: &str,
) -> Option<LocalTls> {
    if !config.server.tls {
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
    let dir = config.server.cache_dir.join("tls");
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
pub(super) fn check_modes(config: &EmulatorConfig) -> Result<(), EmulatorError> {
    if config.lambda.functions == FunctionsMode::Process
        && (config.dynamodb.endpoint.is_none() || config.gateway.gateway == GatewayMode::InProcess)
    {
        return Err(EmulatorError::ProcessNeedsStore {
            conflict: if config.gateway.gateway == GatewayMode::InProcess {
                "; and drop --gateway in-process: processes post through @connections"
            } else {
                ""
            },
        });
    }
    Ok(())
}

/// Settings the emulator gives every function, beside the template's.
pub(super) fn injected_env(
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
        config.gateway.idle_timeout.as_secs().max(1).to_string(),
    );
    if config.dev.dev {
        injected.insert("ROOMCAST_JWT_SECRET".to_owned(), dev_secret.to_owned());
    }
    injected
}

pub(super) fn dev_secret(config: &EmulatorConfig) -> Result<String, EmulatorError> {
    Ok(match &config.dev.dev_secret {
        Some(secret) => secret.clone(),
        None if config.dev.dev => crate::dev_secret::load_or_create(&config.server.cache_dir)?,
        None => String::new(),
    })
}

pub(super) async fn dynamodb_proxy(
    config: &EmulatorConfig,
    tools: &Tools,
    iam: &Option<Arc<Iam>>,
    region: &str,
) -> Result<Option<crate::dynamodb::proxy::Proxy>, EmulatorError> {
    let Some(upstream) = &config.dynamodb.endpoint else {
        return Ok(None);
    };
    let checks = crate::dynamodb::proxy::Checks {
        faults: tools.faults.clone(),
        timeline: tools.timeline.clone(),
        iam: iam.clone(),
        region: region.to_owned(),
        upstream_timeout: None,
    };
    crate::dynamodb::proxy::start(upstream, checks)
        .await
        .map(Some)
        .map_err(|source| EmulatorError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })
}

pub(super) fn front_door(
    config: &EmulatorConfig,
    addr: SocketAddr,
    execute_api_host: &str,
) -> crate::guard::FrontDoor {
    let expose = config.server.expose_dev_apis;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            expose_dev_apis = expose,
            "listening beyond this machine: other machines can reach the WebSocket API and @connections; the inspector, replay, faults, /dev/token and the Invoke API answer this machine only unless --expose-dev-apis"
        );
    }
    crate::guard::FrontDoor::new(execute_api_host, &config.server.allowed_hosts, addr, expose)
}
