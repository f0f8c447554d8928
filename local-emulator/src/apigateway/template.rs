//! API Gateway's part of the template: the WebSocket API
//! (`AWS::ApiGatewayV2::Api` with its routes, integrations, authorizer and
//! stage, or SAM's `AWS::Serverless::WebSocketApi`), each route leading to
//! the function behind it.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::template::{FunctionSpec, Template, TemplateError, api_id_of, invalid};

mod sam;

/// The REQUEST authorizer on `$connect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizerSpec {
    /// Its function.
    pub function: FunctionSpec,
    /// Identity sources, e.g. `route.request.querystring.token`.
    pub identity_sources: Vec<String>,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// `$connect`, `$disconnect`, `$default` or a custom key.
    pub key: String,
    /// The function behind the route's integration.
    pub function: FunctionSpec,
    /// True when `RouteResponseSelectionExpression` is set: the handler's
    /// returned body is sent back to the caller.
    pub returns_response: bool,
    /// The authorizer, on `$connect`.
    pub authorizer: Option<AuthorizerSpec>,
}

/// The WebSocket API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSpec {
    /// The API's id: what `!Ref` of it gives, `requestContext.apiId`, the
    /// id in ARNs and in its execute-api host name (`crate::template::api_id_of`).
    pub id: String,
    /// `RouteSelectionExpression`, e.g. `$request.body.action`.
    pub route_selection: String,
    /// The stage name.
    pub stage: String,
    /// The stage's `StageVariables`.
    pub stage_variables: BTreeMap<String, String>,
    /// Routes by key.
    pub routes: BTreeMap<String, RouteSpec>,
}

impl Template {
    /// The WebSocket API: exactly one `AWS::ApiGatewayV2::Api` with
    /// `ProtocolType: WEBSOCKET`.
    pub fn websocket_api(&self) -> Result<ApiSpec, TemplateError> {
        let mut sam = self.of_type("AWS::Serverless::WebSocketApi");
        if let Some((id, api)) = sam.next() {
            let raw = self.of_type("AWS::ApiGatewayV2::Api").next().is_some();
            if sam.next().is_some() || raw {
                return Err(invalid(
                    "more than one WebSocket API; the emulator serves one",
                ));
            }
            return self.sam_websocket_api(id, api);
        }
        let mut apis = self.of_type("AWS::ApiGatewayV2::Api").filter(|(_, r)| {
            self.prop(r, "ProtocolType").and_then(Value::as_str) == Some("WEBSOCKET")
        });
        let (api_id, api) = apis
            .next()
            .ok_or_else(|| invalid("no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET"))?;
        if apis.next().is_some() {
            return Err(invalid(
                "more than one WebSocket API; the emulator serves one",
            ));
        }
        let route_selection = self
            .prop(api, "RouteSelectionExpression")
            .and_then(|v| self.eval(v))
            .ok_or_else(|| invalid(format!("{api_id} has no RouteSelectionExpression")))?;
        let physical = api_id_of(api_id);
        let belongs = |r: &Value| {
            self.prop(r, "ApiId").and_then(|v| self.eval(v)).as_deref() == Some(physical.as_str())
        };
        let stage_resource = self
            .of_type("AWS::ApiGatewayV2::Stage")
            .find(|(_, r)| belongs(r))
            .map(|(_, r)| r);
        let stage = stage_resource
            .and_then(|r| self.prop(r, "StageName").and_then(|v| self.eval(v)))
            .unwrap_or_else(|| "$default".into());
        let stage_variables = stage_resource
            .map(|r| self.stage_variables(r))
            .unwrap_or_default();
        let mut routes = BTreeMap::new();
        for (route_id, r) in self
            .of_type("AWS::ApiGatewayV2::Route")
            .filter(|(_, r)| belongs(r))
        {
            let key = self
                .prop(r, "RouteKey")
                .and_then(|v| self.eval(v))
                .ok_or_else(|| invalid(format!("route {route_id} has no RouteKey")))?;
            let target = self
                .prop(r, "Target")
                .and_then(|v| self.eval(v))
                .ok_or_else(|| invalid(format!("route {route_id} has no Target")))?;
            let integration_id = target.strip_prefix("integrations/").ok_or_else(|| {
                invalid(format!(
                    "route {route_id}: Target {target} is not integrations/ID"
                ))
            })?;
            let integration = self.resource(integration_id).ok_or_else(|| {
                invalid(format!("route {route_id}: no integration {integration_id}"))
            })?;
            let uri = self
                .prop(integration, "IntegrationUri")
                .and_then(|v| self.eval(v))
                .ok_or_else(|| {
                    invalid(format!(
                        "integration {integration_id} has no IntegrationUri"
                    ))
                })?;
            let function = self.function_in_uri(&uri)?;
            let authorizer = match self.prop(r, "AuthorizerId").and_then(|v| self.eval(v)) {
                Some(auth_id) => Some(self.authorizer(&auth_id)?),
                None => None,
            };
            routes.insert(
                key.clone(),
                RouteSpec {
                    key,
                    function,
                    returns_response: self.prop(r, "RouteResponseSelectionExpression").is_some(),
                    authorizer,
                },
            );
        }
        if routes.is_empty() {
            return Err(invalid(format!("API {api_id} has no routes")));
        }
        Ok(ApiSpec {
            id: api_id_of(api_id),
            route_selection,
            stage,
            stage_variables,
            routes,
        })
    }

    /// A stage's `StageVariables` map, each value evaluated.
    pub(crate) fn stage_variables(&self, stage: &Value) -> BTreeMap<String, String> {
        self.prop(stage, "StageVariables")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), self.eval(v)?)))
            .collect()
    }

    /// `IdentitySource`: a list, or one value.
    fn identity_sources(&self, v: Option<&Value>) -> Vec<String> {
        match v {
            Some(Value::Sequence(seq)) => seq.iter().filter_map(|v| self.eval(v)).collect(),
            Some(v) => self.eval(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn authorizer(&self, id: &str) -> Result<AuthorizerSpec, TemplateError> {
        let r = self
            .resource(id)
            .ok_or_else(|| invalid(format!("no authorizer {id}")))?;
        let uri = self
            .prop(r, "AuthorizerUri")
            .and_then(|v| self.eval(v))
            .ok_or_else(|| invalid(format!("authorizer {id} has no AuthorizerUri")))?;
        let identity_sources = self.identity_sources(self.prop(r, "IdentitySource"));
        Ok(AuthorizerSpec {
            function: self.function_in_uri(&uri)?,
            identity_sources,
        })
    }
}
