//! Handler tests with events shaped like API Gateway's (see fixtures/), each
//! passed through JSON exactly as Lambda would deliver it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use crate::auth::{DevClaims, RoomRights, TokenVerifier, VerifierOptions, mint_hs256};
use crate::clock::SystemClock;
use crate::gateway::memory::MemoryGateway;
use crate::store::memory::MemoryStore;

const SECRET: &[u8] = b"handler-test-secret";

fn now_secs() -> i64 {
    SystemClock.now_ms() / 1000
}

fn token(user: &str) -> String {
    mint_hs256(
        &DevClaims {
            sub: user.into(),
            name: format!("{user} name"),
            exp: now_secs() + 600,
            rooms: RoomRights::all(),
            direct: true,
            iss: None,
            aud: None,
        },
        SECRET,
    )
    .unwrap()
}

/// Loads a fixture, substituting placeholders, and deserialises it the way
/// the Lambda runtime does: from JSON text.
fn event<T: DeserializeOwned>(fixture: &str, token: &str, authorizer: &Value, body: &str) -> T {
    let raw = match fixture {
        "authorizer" => include_str!("fixtures/authorizer-request.json"),
        "connect" => include_str!("fixtures/connect-event.json"),
        "message" => include_str!("fixtures/message-event.json"),
        "disconnect" => include_str!("fixtures/disconnect-event.json"),
        other => panic!("no fixture {other}"),
    };
    let mut v: Value = serde_json::from_str(&raw.replace("TOKEN", token)).unwrap();
    if v["requestContext"].get("authorizer").is_some() {
        v["requestContext"]["authorizer"] = authorizer.clone();
    }
    if v.get("body").is_some() {
        v["body"] = json!(body);
    }
    serde_json::from_str(&v.to_string()).unwrap()
}

struct Fixture {
    app: App,
    gateway: Arc<MemoryGateway>,
    verifier: TokenVerifier,
}

fn fixture() -> Fixture {
    let gateway = Arc::new(MemoryGateway::new());
    Fixture {
        app: App {
            store: Arc::new(MemoryStore::new()),
            gateways: Gateways::Fixed(gateway.clone()),
            verifier: Some(Arc::new(TokenVerifier::hs256(
                SECRET,
                VerifierOptions::default(),
            ))),
            clock: Arc::new(SystemClock),
            config: Config::default(),
            origins: OriginPolicy::parse("https://app.example.com"),
            emf: true,
            dispatch: None,
            events: None,
            events_data: true,
        },
        gateway,
        verifier: TokenVerifier::hs256(SECRET, VerifierOptions::default()),
    }
}

/// What API Gateway would inject: the authorizer's context plus principalId,
/// after a JSON round trip.
fn injected_context(response: &ApiGatewayCustomAuthorizerResponse) -> Value {
    let mut ctx = response.context.clone();
    ctx["principalId"] = json!(response.principal_id);
    ctx["integrationLatency"] = json!(12);
    serde_json::from_str(&ctx.to_string()).unwrap()
}

async fn authorize_ok(f: &Fixture, user: &str) -> Value {
    let request = event("authorizer", &token(user), &Value::Null, "");
    let response = authorizer(&f.verifier, &f.app.origins, None, request)
        .await
        .unwrap();
    let v = serde_json::to_value(&response).unwrap();
    assert_eq!(
        v["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{v}"
    );
    injected_context(&response)
}

#[tokio::test]
async fn authorizer_allows_a_good_token_with_a_context() {
    let f = fixture();
    let request: ApiGatewayCustomAuthorizerRequestTypeRequest =
        event("authorizer", &token("alice"), &Value::Null, "");
    let response = authorizer(&f.verifier, &f.app.origins, None, request)
        .await
        .unwrap();
    let v = serde_json::to_value(&response).unwrap();
    assert_eq!(v["principalId"], "alice");
    assert_eq!(
        v["policyDocument"]["Statement"][0]["Action"],
        json!(["execute-api:Invoke"])
    );
    assert_eq!(
        v["policyDocument"]["Statement"][0]["Resource"],
        json!(["arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/$connect"])
    );
    assert_eq!(v["context"]["userId"], "alice");
    assert_eq!(v["context"]["name"], "alice name");
    assert!(
        v["context"]["rooms"].is_string(),
        "context values must be scalars"
    );
    assert!(v["context"]["exp"].is_i64());
}

#[tokio::test]
async fn authorizer_denies_bad_tokens_foreign_origins_and_missing_tokens() {
    let f = fixture();
    let recorded = Arc::new(roomcast_core::events::RecordedEvents::default());
    let events: Arc<dyn crate::events::Events> = recorded.clone();
    let deny = |v: &Value| v["policyDocument"]["Statement"][0]["Effect"] == "Deny";
    for bad in ["garbage", ""] {
        let r = authorizer(
            &f.verifier,
            &f.app.origins,
            Some(&events),
            event("authorizer", bad, &Value::Null, ""),
        )
        .await
        .unwrap();
        assert!(deny(&serde_json::to_value(&r).unwrap()), "{bad:?}");
    }
    let mut request: Value = serde_json::from_str(
        &include_str!("fixtures/authorizer-request.json").replace("TOKEN", &token("a")),
    )
    .unwrap();
    request["headers"]["Origin"] = json!("https://evil.example");
    let r = authorizer(
        &f.verifier,
        &f.app.origins,
        Some(&events),
        serde_json::from_value(request).unwrap(),
    )
    .await
    .unwrap();
    assert!(deny(&serde_json::to_value(&r).unwrap()));
    // Each refusal is a Request Rejected event, the token never in it.
    let rejected: Vec<(String, String)> = recorded
        .take()
        .into_iter()
        .map(|(kind, d)| {
            assert_eq!(kind, "Request Rejected");
            assert_eq!(d["action"], "connect");
            (
                d["code"].as_str().unwrap().to_owned(),
                d["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let codes: Vec<&str> = rejected.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, vec!["invalid_token", "invalid_token", "forbidden"]);
    assert!(
        rejected.iter().all(|(_, r)| !r.contains("garbage")),
        "{rejected:?}"
    );
}

/// A valid token whose `sub` differs from a real user only by surrounding
/// whitespace (or holds a control character) is refused with API
/// Gateway's 401: the authorizer fails with the message `Unauthorized`
/// ("Lambda authorizer" in API Gateway's guide), not a Deny's 403.
#[tokio::test]
async fn authorizer_refuses_subjects_with_whitespace_or_control_characters_with_401() {
    let f = fixture();
    for sub in [" mallory", "mallory ", "mal\u{1b}lory"] {
        let err = authorizer(
            &f.verifier,
            &f.app.origins,
            None,
            event("authorizer", &token(sub), &Value::Null, ""),
        )
        .await
        .expect_err(sub);
        assert!(
            matches!(err, HandlerError::Unauthorized(_)),
            "{sub:?}: {err:?}"
        );
        let d: lambda_runtime::Diagnostic = err.into();
        assert_eq!(d.error_message, "Unauthorized", "{sub:?}");
    }
    // The same id without the whitespace is a user like any other.
    authorize_ok(&f, "mallory").await;
}

#[tokio::test]
async fn authorizer_reads_the_token_from_the_subprotocol_header() {
    let f = fixture();
    let mut request: Value =
        serde_json::from_str(include_str!("fixtures/authorizer-request.json")).unwrap();
    request["queryStringParameters"] = json!({});
    request["multiValueQueryStringParameters"] = json!({});
    request["headers"]["Sec-WebSocket-Protocol"] = json!(format!("roomcast, {}", token("bob")));
    let r = authorizer(
        &f.verifier,
        &f.app.origins,
        None,
        serde_json::from_value(request).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.principal_id.as_deref(), Some("bob"));
}

#[tokio::test]
async fn connect_message_disconnect_through_real_event_shapes() {
    let f = fixture();
    let ctx = authorize_ok(&f, "alice").await;
    let response = connect(&f.app, event("connect", "x", &ctx, ""))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response
            .headers
            .get("sec-websocket-protocol")
            .and_then(|h| h.to_str().ok()),
        Some("roomcast"),
        "the offered subprotocol is echoed"
    );
    let reply = message(
        &f.app,
        event("message", "x", &ctx, r#"{"action":"hello","ref":1}"#),
    )
    .await
    .unwrap();
    let body = match reply.body {
        Some(Body::Text(t)) => t,
        other => panic!("expected a text body, got {other:?}"),
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            v["type"].clone(),
            v["connectionId"].clone(),
            v["ref"].clone()
        ),
        (json!("welcome"), json!("conn-1="), json!(1))
    );
    let join = message(
        &f.app,
        event("message", "x", &ctx, r#"{"action":"join","room":"r"}"#),
    )
    .await
    .unwrap();
    assert!(matches!(join.body, Some(Body::Text(t)) if t.contains("joined")));
    disconnect(&f.app, event("disconnect", "x", &ctx, ""))
        .await
        .unwrap();
    assert!(
        f.app
            .store
            .members("r", SystemClock.now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(f.gateway.deleted().is_empty());
}

#[tokio::test]
async fn with_events_pending_the_reply_is_posted_first_and_the_events_follow() {
    let mut f = fixture();
    let events = Arc::new(roomcast_core::events::RecordedEvents::default());
    f.app.events = Some(events.clone());
    let ctx = authorize_ok(&f, "alice").await;
    connect(&f.app, event("connect", "x", &ctx, ""))
        .await
        .unwrap();
    assert_eq!(events.take()[0].0, "Connection Opened");
    // A join has events (Room Joined, Presence Changed): its reply goes out
    // through the gateway, before the events are put, and the route
    // response is empty.
    let join = message(
        &f.app,
        event(
            "message",
            "x",
            &ctx,
            r#"{"action":"join","room":"r","ref":"j"}"#,
        ),
    )
    .await
    .unwrap();
    assert!(join.body.is_none(), "{:?}", join.body);
    let posted = f.gateway.take("conn-1=");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["type"], "joined");
    assert_eq!(posted[0]["ref"], "j");
    let kinds: Vec<&str> = events.take().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["Room Joined", "Presence Changed"]);
    // A frame without events keeps its reply as the route response.
    let pong = message(
        &f.app,
        event("message", "x", &ctx, r#"{"action":"heartbeat"}"#),
    )
    .await
    .unwrap();
    assert!(matches!(pong.body, Some(Body::Text(t)) if t.contains("pong")));
    assert!(events.take_batches().is_empty());
}

#[tokio::test]
async fn typing_has_no_route_response_body() {
    let f = fixture();
    let ctx = authorize_ok(&f, "alice").await;
    connect(&f.app, event("connect", "x", &ctx, ""))
        .await
        .unwrap();
    message(
        &f.app,
        event("message", "x", &ctx, r#"{"action":"join","room":"r"}"#),
    )
    .await
    .unwrap();
    let r = message(
        &f.app,
        event(
            "message",
            "x",
            &ctx,
            r#"{"action":"typing","room":"r","active":true}"#,
        ),
    )
    .await
    .unwrap();
    assert!(r.body.is_none());
}

#[tokio::test]
async fn a_binary_frame_gets_an_error_body() {
    let f = fixture();
    let ctx = authorize_ok(&f, "alice").await;
    let mut e: ApiGatewayWebsocketProxyRequest = event("message", "x", &ctx, "AAEC");
    e.is_base64_encoded = true;
    let r = message(&f.app, e).await.unwrap();
    assert!(matches!(r.body, Some(Body::Text(t)) if t.contains("invalid_frame")));
}

#[tokio::test]
async fn misrouted_events_are_typed_errors() {
    let f = fixture();
    let mut e: ApiGatewayWebsocketProxyRequest = event("message", "x", &json!({}), "{}");
    e.request_context.connection_id = None;
    let err = message(&f.app, e).await.unwrap_err();
    assert!(matches!(err, HandlerError::MissingConnectionId));
    let d: lambda_runtime::Diagnostic = err.into();
    assert_eq!(d.error_type, "MissingConnectionId");
    let err = connect(
        &f.app,
        event("connect", "x", &json!({"principalId": "x"}), ""),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::Unauthenticated(_)), "{err}");
}

#[tokio::test]
async fn publish_validates_its_request() {
    let f = fixture();
    let both: Result<PublishRequest, _> =
        serde_json::from_value(json!({"room": "r", "user": "u", "data": 1}));
    let err = publish(&f.app, both.unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
    let unknown: Result<PublishRequest, _> =
        serde_json::from_value(json!({"room": "r", "data": 1, "extra": true}));
    assert!(unknown.is_err(), "unknown fields are refused");
    let ok: PublishRequest =
        serde_json::from_value(json!({"room": "r", "data": {"x": 1}, "id": "p1"})).unwrap();
    let report = publish(&f.app, ok).await.unwrap();
    assert_eq!(report.seq, Some(1));
}
