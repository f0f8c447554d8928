//! The production `Gateway`: the API Gateway Management API.
//!
//! One SDK client per endpoint, built on first use from the shared SDK
//! config and reused for the life of the process (Lambda container or
//! emulator). `GoneException` is matched by type, never by message text.
//! PostToConnection, the one call made per recipient, goes through the
//! lean client (`lean`) unless it is turned off; the SDK serves the rest.

mod http1;
mod lean;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use rustls_platform_verifier::BuilderVerifierExt;
use tokio_rustls::rustls::ClientConfig;

use crate::gateway::{ConnectionInfo, Gateway, GatewayError};

/// Clients for the Management API, one per callback endpoint.
pub struct ManagementApi {
    sdk: aws_config::SdkConfig,
    /// Posts through the lean client (the default), else the SDK.
    lean: bool,
    /// The lean client's TLS configuration, shared by every `https://`
    /// endpoint. Built with the first such gateway, not at init: it loads
    /// the TLS roots, which cost a cold start 3–4 ms when done in `new`.
    lean_tls: std::sync::OnceLock<Option<Arc<ClientConfig>>>,
    /// `ROOMCAST_CALLBACK_URL`: overrides the endpoint derived from events
    /// (custom domains, the emulator, the publish function).
    fixed_endpoint: Option<String>,
    clients: Mutex<HashMap<String, Arc<ManagementGateway>>>,
}

impl ManagementApi {
    /// Builds the pool. `fixed_endpoint` is `ROOMCAST_CALLBACK_URL`, if set.
    pub fn new(sdk: aws_config::SdkConfig, fixed_endpoint: Option<String>) -> Self {
        Self {
            sdk,
            lean: true,
            lean_tls: std::sync::OnceLock::new(),
            fixed_endpoint: fixed_endpoint.map(|e| e.trim_end_matches('/').to_owned()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Posts through the SDK as well (true), or through the lean client
    /// (false, the default). For side-by-side measurements and tests.
    pub fn sdk_posts(mut self, on: bool) -> Self {
        self.lean = !on;
        self
    }

    /// The endpoint for an event: the fixed one, else `https://{domain}/{stage}`.
    pub fn endpoint_for(&self, domain_name: Option<&str>, stage: Option<&str>) -> Option<String> {
        if let Some(fixed) = &self.fixed_endpoint {
            return Some(fixed.clone());
        }
        let domain = domain_name.filter(|d| !d.is_empty())?;
        Some(match stage.filter(|s| !s.is_empty()) {
            Some(stage) => format!("https://{domain}/{stage}"),
            None => format!("https://{domain}"),
        })
    }

    /// The gateway for `endpoint`, creating its client on first use.
    pub fn gateway(&self, endpoint: &str) -> Arc<ManagementGateway> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                // Stalled-stream protection polices long bodies; frames are at
                // most 128 KB from memory, and fan_out bounds each call with
                // its own timeout. Off, it saves ~5% per call (BENCHMARKS.md).
                let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
                    .endpoint_url(endpoint)
                    .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                    .build();
                tracing::debug!(endpoint, "management API client created");
                let lean = if self.lean { self.lean(endpoint) } else { None };
                Arc::new(ManagementGateway {
                    client: Client::from_conf(config),
                    lean,
                })
            })
            .clone()
    }
}

/// One endpoint's Management API client.
pub struct ManagementGateway {
    client: Client,
    lean: Option<lean::LeanPost>,
}

impl ManagementApi {
    /// The lean client for `endpoint`, with the SDK config's credentials,
    /// region and retry settings; `None` without credentials or a region,
    /// or for an `https://` endpoint when TLS cannot be set up.
    fn lean(&self, endpoint: &str) -> Option<lean::LeanPost> {
        let credentials = self.sdk.credentials_provider()?;
        let region = self.sdk.region()?.to_string();
        let retry = self.sdk.retry_config().map_or(
            lean::Retry {
                max_attempts: 3,
                initial_backoff: std::time::Duration::from_secs(1),
                max_backoff: std::time::Duration::from_secs(20),
            },
            |r| lean::Retry {
                max_attempts: r.max_attempts().max(1),
                initial_backoff: r.initial_backoff(),
                max_backoff: r.max_backoff(),
            },
        );
        let tls = if endpoint.starts_with("https://") {
            self.lean_tls.get_or_init(lean_tls).clone()
        } else {
            None
        };
        let settings = http1::Settings::default();
        lean::LeanPost::new(endpoint, tls, settings, region, credentials, retry)
    }
}

/// TLS for the lean client: the platform's trust store (on Linux the
/// system roots, or `SSL_CERT_FILE`), as the SDK's client trusts, and
/// HTTP/1.1 offered by ALPN. `None` if it cannot be built (then the SDK
/// posts).
fn lean_tls() -> Option<Arc<ClientConfig>> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let built = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map(|b| b.with_no_client_auth());
    match built {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        Err(e) => {
            tracing::warn!(error = %e, "lean PostToConnection client has no TLS; the SDK posts");
            None
        }
    }
}

impl std::fmt::Debug for ManagementGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementGateway").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi").finish_non_exhaustive()
    }
}

/// Which modelled exception a failed call was, read from the typed error
/// (never from its text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exception {
    Gone,
    TooLarge,
    Throttled,
    Forbidden,
    Other,
}

/// The typed errors of the three operations, read without their text.
trait Modelled {
    fn exception(&self) -> Exception;
}

macro_rules! modelled {
    ($ty:ty, $too_large:expr) => {
        impl Modelled for $ty {
            fn exception(&self) -> Exception {
                if self.is_gone_exception() {
                    Exception::Gone
                } else if $too_large(self) {
                    Exception::TooLarge
                } else if self.is_limit_exceeded_exception() {
                    Exception::Throttled
                } else if self.is_forbidden_exception() {
                    Exception::Forbidden
                } else {
                    Exception::Other
                }
            }
        }
    };
}

modelled!(
    PostToConnectionError,
    PostToConnectionError::is_payload_too_large_exception
);
modelled!(DeleteConnectionError, |_: &DeleteConnectionError| false);
modelled!(GetConnectionError, |_: &GetConnectionError| false);

fn classify<E, R>(err: &SdkError<E, R>) -> GatewayError
where
    E: Modelled + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let exception = err
        .as_service_error()
        .map_or(Exception::Other, Modelled::exception);
    let detail = || aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
    match exception {
        Exception::Gone => GatewayError::Gone,
        Exception::TooLarge => GatewayError::PayloadTooLarge,
        Exception::Throttled => GatewayError::Throttled,
        Exception::Forbidden => GatewayError::Forbidden(detail()),
        Exception::Other => GatewayError::Unavailable(detail()),
    }
}

fn millis(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

#[async_trait]
impl Gateway for ManagementGateway {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), GatewayError> {
        if let Some(lean) = &self.lean {
            return lean.post(connection_id, payload).await;
        }
        self.client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    async fn delete(&self, connection_id: &str) -> Result<(), GatewayError> {
        self.client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, GatewayError> {
        let out = self
            .client
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(ConnectionInfo {
            connected_at_ms: millis(out.connected_at()),
            source_ip: out
                .identity()
                .and_then(|i| i.source_ip())
                .map(str::to_owned),
            user_agent: out
                .identity()
                .and_then(|i| i.user_agent())
                .map(str::to_owned),
            last_active_at_ms: millis(out.last_active_at()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lean_client_gets_tls_from_the_platform_trust_store() {
        let config = lean_tls().expect("the system's roots load");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    fn api(fixed: Option<&str>) -> ManagementApi {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        ManagementApi::new(sdk, fixed.map(str::to_owned))
    }

    #[test]
    fn endpoint_comes_from_the_event_unless_fixed() {
        let a = api(None);
        assert_eq!(
            a.endpoint_for(
                Some("abc.execute-api.eu-west-1.amazonaws.com"),
                Some("prod")
            )
            .as_deref(),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com/prod")
        );
        assert_eq!(a.endpoint_for(None, Some("prod")), None);
        let f = api(Some("http://127.0.0.1:3001/local/"));
        assert_eq!(
            f.endpoint_for(Some("x"), Some("y")).as_deref(),
            Some("http://127.0.0.1:3001/local")
        );
    }

    #[test]
    fn clients_are_built_once_per_endpoint() {
        let a = api(None);
        let first = a.gateway("https://one/prod");
        let again = a.gateway("https://one/prod");
        let other = a.gateway("https://two/prod");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
