//! Builds the events API Gateway sends to Lambda, field for field.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::apigateway::connections::Peer;
use crate::template::ACCOUNT;
use crate::timefmt::request_time;

/// What every event of one connection shares.
pub(crate) struct EventContext<'a> {
    pub(crate) api_id: &'a str,
    pub(crate) stage: &'a str,
    /// The stage's variables, as every event carries them.
    pub(crate) stage_variables: &'a BTreeMap<String, String>,
    /// The stack's region, for the ARNs (the functions' `AWS_REGION`).
    pub(crate) region: &'a str,
    pub(crate) peer: &'a Peer,
}

/// A fresh request id.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl EventContext<'_> {
    fn request_context(
        &self,
        route_key: &str,
        event_type: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Map<String, Value> {
        let mut ctx = Map::new();
        ctx.insert("routeKey".into(), json!(route_key));
        ctx.insert("eventType".into(), json!(event_type));
        ctx.insert("extendedRequestId".into(), json!(request_id));
        ctx.insert("requestTime".into(), json!(request_time(now_ms)));
        ctx.insert("messageDirection".into(), json!("IN"));
        ctx.insert("stage".into(), json!(self.stage));
        ctx.insert("connectedAt".into(), json!(self.peer.connected_at_ms));
        ctx.insert("requestTimeEpoch".into(), json!(now_ms));
        ctx.insert(
            "identity".into(),
            json!({"sourceIp": self.peer.source_ip, "userAgent": self.peer.user_agent}),
        );
        ctx.insert("requestId".into(), json!(request_id));
        ctx.insert("domainName".into(), json!(self.peer.domain));
        ctx.insert("connectionId".into(), json!(self.peer.id));
        ctx.insert("apiId".into(), json!(self.api_id));
        ctx
    }

    /// The REQUEST authorizer's event.
    pub(crate) fn authorizer(&self, http: &HttpParts, request_id: &str, now_ms: i64) -> Value {
        let mut event = http.maps();
        event.insert("type".into(), json!("REQUEST"));
        event.insert(
            "methodArn".into(),
            json!(format!(
                "arn:aws:execute-api:{}:{ACCOUNT}:{}/{}/$connect",
                self.region, self.api_id, self.stage
            )),
        );
        event.insert("stageVariables".into(), json!(self.stage_variables));
        event.insert(
            "requestContext".into(),
            Value::Object(self.request_context("$connect", "CONNECT", request_id, now_ms)),
        );
        Value::Object(event)
    }

    /// `$connect`: headers and query string, plus the authorizer's output.
    pub(crate) fn connect(
        &self,
        http: &HttpParts,
        authorizer: &Value,
        request_id: &str,
        now_ms: i64,
    ) -> Value {
        let mut ctx = self.request_context("$connect", "CONNECT", request_id, now_ms);
        if !authorizer.is_null() {
            ctx.insert("authorizer".into(), authorizer.clone());
        }
        let mut event = http.maps();
        event.insert("requestContext".into(), Value::Object(ctx));
        event.insert("isBase64Encoded".into(), json!(false));
        self.add_stage_variables(&mut event);
        Value::Object(event)
    }

    /// `stageVariables` on a proxy event, when the stage declares any.
    /// AWS's WebSocket pages do not show a proxy event with them; the
    /// proxy event type the SDKs share (`aws_lambda_events`'
    /// `ApiGatewayWebsocketProxyRequest`) has the field, and users of other
    /// emulators report it present in AWS (localstack#10734), so it is
    /// sent as the REST proxy sends it, and left out when there are none.
    fn add_stage_variables(&self, event: &mut Map<String, Value>) {
        if !self.stage_variables.is_empty() {
            event.insert("stageVariables".into(), json!(self.stage_variables));
        }
    }

    /// A message: no headers; `body` as text (WebSocket APIs take no
    /// binary frames, so `isBase64Encoded` is always false).
    pub(crate) fn message(
        &self,
        route_key: &str,
        body: &str,
        authorizer: &Value,
        request_id: &str,
        now_ms: i64,
    ) -> Value {
        let mut ctx = self.request_context(route_key, "MESSAGE", request_id, now_ms);
        // API Gateway's message ids look like its connection ids.
        ctx.insert(
            "messageId".into(),
            json!(crate::apigateway::connections::new_connection_id()),
        );
        if !authorizer.is_null() {
            ctx.insert("authorizer".into(), authorizer.clone());
        }
        let mut event = Map::new();
        event.insert("requestContext".into(), Value::Object(ctx));
        event.insert("body".into(), json!(body));
        event.insert("isBase64Encoded".into(), json!(false));
        self.add_stage_variables(&mut event);
        Value::Object(event)
    }

    /// `$disconnect`, with the close code and reason.
    pub(crate) fn disconnect(
        &self,
        code: u16,
        reason: &str,
        authorizer: &Value,
        request_id: &str,
        now_ms: i64,
    ) -> Value {
        let mut ctx = self.request_context("$disconnect", "DISCONNECT", request_id, now_ms);
        ctx.insert("disconnectStatusCode".into(), json!(code));
        ctx.insert("disconnectReason".into(), json!(reason));
        if !authorizer.is_null() {
            ctx.insert("authorizer".into(), authorizer.clone());
        }
        let mut event = Map::new();
        event.insert("requestContext".into(), Value::Object(ctx));
        event.insert("isBase64Encoded".into(), json!(false));
        self.add_stage_variables(&mut event);
        Value::Object(event)
    }
}

/// The parts of the upgrade request that events carry.
#[derive(Default)]
pub(crate) struct HttpParts {
    /// Header name (as sent) → values.
    pub(crate) headers: BTreeMap<String, Vec<String>>,
    /// Query name → values.
    pub(crate) query: BTreeMap<String, Vec<String>>,
}

impl HttpParts {
    /// Single-value maps keep the last value, as API Gateway does.
    fn maps(&self) -> Map<String, Value> {
        let single = |m: &BTreeMap<String, Vec<String>>| -> Value {
            Value::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), json!(v.last()?))))
                    .collect(),
            )
        };
        let multi = |m: &BTreeMap<String, Vec<String>>| -> Value {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        };
        let mut event = Map::new();
        event.insert("headers".into(), single(&self.headers));
        event.insert("multiValueHeaders".into(), multi(&self.headers));
        event.insert("queryStringParameters".into(), single(&self.query));
        event.insert("multiValueQueryStringParameters".into(), multi(&self.query));
        event
    }

    /// A header's last value, by case-insensitive name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.last())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::{
        ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
    };

    fn ctx() -> EventContext<'static> {
        let peer = Box::leak(Box::new(Peer {
            id: "abc=".into(),
            connected_at_ms: 1_000,
            source_ip: "127.0.0.1".into(),
            user_agent: "ua".into(),
            domain: "127.0.0.1:3001".into(),
        }));
        EventContext {
            api_id: "local",
            stage: "prod",
            stage_variables: Box::leak(Box::default()),
            region: "us-east-1",
            peer,
        }
    }

    fn parts() -> HttpParts {
        HttpParts {
            headers: BTreeMap::from([
                ("Host".into(), vec!["127.0.0.1:3001".into()]),
                ("X-Multi".into(), vec!["a".into(), "b".into()]),
            ]),
            query: BTreeMap::from([("token".into(), vec!["t".into()])]),
        }
    }

    #[test]
    fn events_deserialise_into_the_lambda_types() {
        let auth = json!({"principalId": "alice", "userId": "alice", "exp": 5});
        let connect: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(ctx().connect(&parts(), &auth, "r1", 2_000)).unwrap();
        let rc = &connect.request_context;
        assert_eq!(rc.event_type.as_deref(), Some("CONNECT"));
        assert_eq!(rc.connected_at, 1_000);
        assert_eq!(rc.request_time_epoch, 2_000);
        assert_eq!(rc.connection_id.as_deref(), Some("abc="));
        assert_eq!(rc.authorizer.fields["userId"], "alice");
        assert_eq!(
            connect.headers.get("x-multi").unwrap(),
            "b",
            "single-value map keeps the last"
        );
        assert_eq!(
            connect
                .multi_value_headers
                .get_all("x-multi")
                .iter()
                .count(),
            2
        );
        assert_eq!(connect.query_string_parameters.first("token"), Some("t"));

        let message: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(ctx().message("$default", "hi", &auth, "r2", 3_000)).unwrap();
        assert!(!message.is_base64_encoded);
        assert_eq!(
            message.request_context.message_id.as_deref().map(str::len),
            Some(16)
        );
        assert!(message.headers.is_empty(), "later events carry no headers");

        let disconnect: ApiGatewayWebsocketProxyRequest = serde_json::from_value(ctx().disconnect(
            1005,
            "Client-side close frame status not set",
            &auth,
            "r3",
            4_000,
        ))
        .unwrap();
        assert_eq!(
            disconnect.request_context.disconnect_status_code,
            Some(1005)
        );
        assert_eq!(
            disconnect.request_context.event_type.as_deref(),
            Some("DISCONNECT")
        );

        let authorizer: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(ctx().authorizer(&parts(), "r0", 1_000)).unwrap();
        assert_eq!(
            authorizer.method_arn.as_deref(),
            Some("arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect")
        );
        assert_eq!(authorizer.query_string_parameters.first("token"), Some("t"));
    }
}
