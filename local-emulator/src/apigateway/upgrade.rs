//! The WebSocket handshake, API Gateway style: identity sources, the
//! REQUEST authorizer and `$connect` all run before the 101, and decide it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerResponse;
use aws_lambda_events::iam::IamPolicyEffect;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use hyper::upgrade::OnUpgrade;

use crate::iam::{action_matches, arn_matches};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use crate::apigateway::connections::{Connection, Peer, new_connection_id};
use crate::apigateway::events::{EventContext, HttpParts, request_id};
use crate::apigateway::query::parse_query;
use crate::apigateway::service::ApiGateway;
use crate::header_case::OriginalNames;
use crate::http::HttpError;
use crate::lambda::invoke::InvokeFailure;
use crate::lambda::log_text::first_lines;

/// Whether this request asks for a WebSocket upgrade.
pub(crate) fn is_websocket<B>(req: &http::Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

pub(crate) async fn handle(gateway: Arc<ApiGateway>, addr: SocketAddr, req: Request) -> Response {
    let connection_id = new_connection_id();
    let span = tracing::info_span!("connect", connection_id = %connection_id);
    let id = connection_id.clone();
    let response = match handshake(&gateway, addr, req, connection_id)
        .instrument(span)
        .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    gateway.metrics.connect(response.status().as_u16());
    gateway.timeline.record(
        "connect",
        gateway.now_ms(),
        serde_json::json!({"connectionId": id, "status": response.status().as_u16(), "sourceIp": addr.ip().to_string()}),
    );
    response
}

const UNAUTHORIZED: HttpError = HttpError::Handshake(StatusCode::UNAUTHORIZED, "Unauthorized");

async fn handshake(
    gateway: &Arc<ApiGateway>,
    addr: SocketAddr,
    mut req: Request,
    connection_id: String,
) -> Result<Response, HttpError> {
    let accept = check_request(gateway, &req)?;
    let http = HttpParts::of(&req);
    let peer = Peer {
        id: connection_id,
        connected_at_ms: gateway.now_ms(),
        source_ip: addr.ip().to_string(),
        user_agent: http.header("user-agent").unwrap_or_default().to_owned(),
        domain: http.header("host").unwrap_or("127.0.0.1").to_owned(),
    };
    let events = gateway.events(&peer);
    let authorizer = authorize(gateway, &events, &http).await?;
    let protocol = connect(gateway, &events, &http, &authorizer).await?;
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return Err(HttpError::Internal(
            "the connection cannot be upgraded".into(),
        ));
    };
    open(gateway, peer, authorizer, on_upgrade);
    tracing::info!("connected");
    Ok(switching_protocols(&accept, protocol))
}

/// The path, the WebSocket headers and whether we take connections at all;
/// returns the `Sec-WebSocket-Accept` value.
fn check_request(gateway: &ApiGateway, req: &Request) -> Result<String, HttpError> {
    let path = req.uri().path().trim_end_matches('/');
    if !(path.is_empty() || path == format!("/{}", gateway.api.stage)) {
        return Err(HttpError::Handshake(StatusCode::NOT_FOUND, "Not Found"));
    }
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| version_ok)
        .ok_or(HttpError::Handshake(
            StatusCode::BAD_REQUEST,
            "Bad WebSocket upgrade request",
        ))?;
    if gateway
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Err(HttpError::Handshake(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Identity sources, then the authorizer. Returns what later events carry
/// as `requestContext.authorizer` (`Null` without an authorizer).
async fn authorize(
    gateway: &ApiGateway,
    events: &EventContext<'_>,
    http: &HttpParts,
) -> Result<Value, HttpError> {
    let Some(auth) = &gateway.api.authorizer else {
        return Ok(Value::Null);
    };
    if let Some(missing) = auth
        .identity_sources
        .iter()
        .find(|s| !identity_present(s, http))
    {
        tracing::info!(source = %missing, "identity source missing: 401 without invoking the authorizer");
        return Err(UNAUTHORIZED);
    }
    let event = events.authorizer(http, &request_id(), gateway.now_ms());
    let method_arn = event["methodArn"].as_str().unwrap_or_default().to_owned();
    match auth
        .function
        .invoke("authorizer", event, &gateway.metrics)
        .await
    {
        Ok(policy) => allowed(policy, &method_arn)
            .ok_or(HttpError::Handshake(StatusCode::FORBIDDEN, "Forbidden")),
        Err(InvokeFailure::Error(e)) if e.is_unauthorized() => Err(UNAUTHORIZED),
        Err(_) => Err(HttpError::Handshake(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
        )),
    }
}

/// What `$connect` may answer: a status and headers (Lambda proxy shape).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectResponse {
    /// Absent means success.
    status_code: Option<u16>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Shown in the log when the connection is refused.
    #[serde(default)]
    body: Option<String>,
}

/// Runs `$connect`, when the template has it. Returns the subprotocol to
/// echo: only one `$connect` chose, as API Gateway does.
async fn connect(
    gateway: &ApiGateway,
    events: &EventContext<'_>,
    http: &HttpParts,
    authorizer: &Value,
) -> Result<Option<HeaderValue>, HttpError> {
    let Some(route) = gateway.api.routes.get("$connect") else {
        return Ok(None);
    };
    let rid = request_id();
    let event = events.connect(http, authorizer, &rid, gateway.now_ms());
    let failed = HttpError::Handshake(StatusCode::BAD_GATEWAY, "Internal server error");
    let response = route
        .function
        .invoke("$connect", event, &gateway.metrics)
        .await
        .map_err(|_| failed.clone())?;
    let (function, connection_id) = (&route.function.name, &events.peer.id);
    let response: ConnectResponse = match response {
        Value::Null => ConnectResponse::default(),
        v => {
            let shown = first_lines(&v.to_string());
            serde_json::from_value(v).map_err(|e| {
                tracing::warn!(%function, route = "$connect", %connection_id, request_id = %rid, error = %e, response = %shown, "$connect returned a response API Gateway cannot read: 502");
                failed.clone()
            })?
        }
    };
    let status = response.status_code.unwrap_or(200);
    if !(200..300).contains(&status) {
        let body = first_lines(response.body.as_deref().unwrap_or_default());
        tracing::warn!(%function, route = "$connect", %connection_id, request_id = %rid, status, %body, "$connect refused the connection");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return Err(HttpError::Handshake(code, "Connection rejected"));
    }
    Ok(response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
        .and_then(|(_, v)| HeaderValue::from_str(v).ok()))
}

/// Registers the socket's life in a task of its own, started by the 101.
fn open(gateway: &Arc<ApiGateway>, peer: Peer, authorizer: Value, on_upgrade: OnUpgrade) {
    let gateway = gateway.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(gateway.options.outbound_queue);
    let connection = Arc::new(Connection::new(peer, tx, authorizer));
    let ws_config = WebSocketConfig::default()
        .max_frame_size(Some(gateway.options.max_frame_bytes))
        .max_message_size(Some(gateway.options.max_message_bytes))
        // tungstenite's default 128 KiB read buffer per socket dominates
        // idle memory; frames larger than this still work (it grows).
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    tokio::spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let ws =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
                    crate::apigateway::socket::run(gateway, connection, ws, rx).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "upgrade failed after $connect");
                    let reason = "Connection was closed abnormally";
                    crate::apigateway::routing::disconnected(&gateway, &connection, 1006, reason)
                        .await;
                }
            }
        }
        .in_current_span(),
    );
}

fn switching_protocols(accept: &str, protocol: Option<HeaderValue>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    response
}

/// `route.request.querystring.X` / `route.request.header.X` present and non-empty.
fn identity_present(source: &str, http: &HttpParts) -> bool {
    if let Some(name) = source.strip_prefix("route.request.querystring.") {
        return http
            .query
            .get(name)
            .is_some_and(|v| v.iter().any(|s| !s.is_empty()));
    }
    if let Some(name) = source.strip_prefix("route.request.header.") {
        return http.header(name).is_some_and(|v| !v.is_empty());
    }
    // Stage variables and context sources are always present offline.
    true
}

/// The policy's context (with `principalId`) when it allows invoking
/// `method_arn`; `None` when it does not (API Gateway answers 403): a
/// matching Deny wins, else a matching Allow is needed ("IAM JSON policy
/// elements: Resource" and the policy evaluation logic; "Control access to
/// WebSocket APIs with AWS Lambda REQUEST authorizers": the policy must
/// allow the `$connect` route's method ARN). A response that is not a
/// policy is `None` too.
fn allowed(response: Value, method_arn: &str) -> Option<Value> {
    let policy: ApiGatewayCustomAuthorizerResponse<Value> = serde_json::from_value(response)
        .map_err(|e| tracing::warn!(error = %e, "the authorizer returned no readable policy"))
        .ok()?;
    let statements = &policy.policy_document.statement;
    let covers = |effect: IamPolicyEffect| {
        statements.iter().any(|s| {
            s.effect == effect
                && s.action
                    .iter()
                    .any(|a| action_matches(a, "execute-api:Invoke"))
                && s.resource.iter().any(|r| arn_matches(r, method_arn))
        })
    };
    if covers(IamPolicyEffect::Deny) || !covers(IamPolicyEffect::Allow) {
        tracing::info!(%method_arn, "the authorizer's policy does not allow this $connect: 403");
        return None;
    }
    let mut context = match policy.context {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(p) = policy.principal_id {
        context.insert("principalId".into(), json!(p));
    }
    context.insert("integrationLatency".into(), json!(0));
    Some(Value::Object(context))
}

/// Headers and query string, as the authorizer and `$connect` events carry them.
impl HttpParts {
    fn of<B>(req: &http::Request<B>) -> Self {
        let names = req.extensions().get::<OriginalNames>();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in req.headers() {
            if let Ok(v) = value.to_str() {
                // As the client spelled it: API Gateway does not fold case.
                let name = names.map_or(name.as_str(), |n| n.spelling(name.as_str()));
                headers
                    .entry(name.to_owned())
                    .or_default()
                    .push(v.to_owned());
            }
        }
        Self {
            headers,
            query: parse_query(req.uri().query()),
        }
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect";

    fn policy(effect: &str, resource: Value) -> Value {
        json!({"principalId": "u", "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}})
    }

    #[test]
    fn an_allow_must_cover_the_method_arn() {
        assert!(allowed(policy("Allow", json!(ARN)), ARN).is_some());
        assert!(
            allowed(
                policy("Allow", json!("arn:aws:execute-api:*:*:local/*")),
                ARN
            )
            .is_some()
        );
        assert!(allowed(policy("Allow", json!(["x", "*"])), ARN).is_some());
        assert!(
            allowed(
                policy(
                    "Allow",
                    json!("arn:aws:execute-api:us-east-1:000000000000:other/prod/$connect")
                ),
                ARN
            )
            .is_none(),
            "another API's ARN"
        );
        assert!(
            allowed(
                policy(
                    "Allow",
                    json!("arn:aws:execute-api:us-east-1:000000000000:local/dev/*")
                ),
                ARN
            )
            .is_none(),
            "another stage"
        );
    }

    #[test]
    fn a_deny_wins_only_where_it_applies() {
        let both = json!({"principalId": "u", "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:aws:execute-api:*:*:local/dev/*"}]}});
        assert!(
            allowed(both, ARN).is_some(),
            "the Deny is for another stage"
        );
        assert!(allowed(policy("Deny", json!("*")), ARN).is_none());
    }
}
