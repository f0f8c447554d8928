//! SAM's `AWS::Serverless::WebSocketApi`: routes, stage and the `$connect`
//! authorizer in one resource, read into the same [`ApiSpec`] as the raw
//! `AWS::ApiGatewayV2::*` resources (as samtranslator expands it: stage
//! `default` unless `StageName` is set; `Auth` applies to `$connect`).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::{ApiSpec, AuthorizerSpec, RouteSpec};
use crate::template::{Template, TemplateError, invalid};

/// samtranslator's stage name when `StageName` is absent.
const DEFAULT_STAGE: &str = "default";

impl Template {
    /// The API from an `AWS::Serverless::WebSocketApi` resource.
    pub(super) fn sam_websocket_api(
        &self,
        id: &str,
        api: &Value,
    ) -> Result<ApiSpec, TemplateError> {
        let route_selection = self
            .prop(api, "RouteSelectionExpression")
            .and_then(|v| self.eval(v))
            .ok_or_else(|| invalid(format!("{id} has no RouteSelectionExpression")))?;
        let stage = self
            .prop(api, "StageName")
            .and_then(|v| self.eval(v))
            .unwrap_or_else(|| DEFAULT_STAGE.into());
        let authorizer = match self.prop(api, "Auth") {
            Some(auth) => self.sam_authorizer(id, auth)?,
            None => None,
        };
        let table = self
            .prop(api, "Routes")
            .and_then(Value::as_mapping)
            .ok_or_else(|| invalid(format!("{id} has no Routes")))?;
        let mut routes = BTreeMap::new();
        for (key, spec) in table {
            let key = key
                .as_str()
                .ok_or_else(|| invalid(format!("{id}: a route key is not a string")))?
                .to_owned();
            let arn = spec
                .get("FunctionArn")
                .and_then(|v| self.eval(v))
                .ok_or_else(|| invalid(format!("{id}: route {key} has no FunctionArn")))?;
            let route = RouteSpec {
                key: key.clone(),
                function: self.function_in_uri(&arn)?,
                returns_response: spec.get("RouteResponseSelectionExpression").is_some(),
                authorizer: (key == "$connect").then(|| authorizer.clone()).flatten(),
            };
            routes.insert(key, route);
        }
        if routes.is_empty() {
            return Err(invalid(format!("API {id} has no routes")));
        }
        if authorizer.is_some() && !routes.contains_key("$connect") {
            return Err(invalid(format!(
                "{id}: Auth is only available if there is a $connect route"
            )));
        }
        Ok(ApiSpec {
            id: crate::template::api_id_of(id),
            route_selection,
            stage,
            stage_variables: self.stage_variables(api),
            routes,
        })
    }

    /// `Auth: {AuthType: CUSTOM, AuthArn, IdentitySource}`; `NONE` (or no
    /// `Auth`) means no authorizer. `AWS_IAM` is not emulated.
    fn sam_authorizer(
        &self,
        id: &str,
        auth: &Value,
    ) -> Result<Option<AuthorizerSpec>, TemplateError> {
        match auth.get("AuthType").and_then(|v| self.eval(v)).as_deref() {
            None | Some("NONE") => Ok(None),
            Some("CUSTOM") => {
                let arn = auth
                    .get("AuthArn")
                    .and_then(|v| self.eval(v))
                    .ok_or_else(|| {
                        invalid(format!(
                            "{id}: AuthArn must be specified if AuthType is CUSTOM"
                        ))
                    })?;
                let identity_sources = self.identity_sources(auth.get("IdentitySource"));
                Ok(Some(AuthorizerSpec {
                    function: self.function_in_uri(&arn)?,
                    identity_sources,
                }))
            }
            Some(other) => Err(invalid(format!(
                "{id}: AuthType {other} is not emulated; use CUSTOM (a REQUEST authorizer) or NONE"
            ))),
        }
    }
}
