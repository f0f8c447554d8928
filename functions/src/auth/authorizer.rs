//! The REQUEST authorizer that guards `$connect`.
//!
//! It takes the token from the `token` query parameter, or from
//! `Sec-WebSocket-Protocol: roomcast, <jwt>` (browsers cannot set other
//! headers on a WebSocket), checks the `Origin` allowlist, verifies the JWT
//! and answers with an IAM policy plus a context. API Gateway injects that
//! context into every later event of the connection as
//! `requestContext.authorizer`, which is how the other handlers learn who
//! the user is without a lookup.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use http::HeaderMap;
use serde_json::{Map, Value};

use roomcast_core::auth::{AuthError, Identity, RoomRights, Verify};

use super::origin::OriginPolicy;

/// Context key: the user id.
pub const CONTEXT_USER: &str = "userId";
/// Context key: the display name.
pub const CONTEXT_NAME: &str = "name";
/// Context key: the room rights, as a JSON string (context values must be
/// strings, numbers or booleans).
pub const CONTEXT_ROOMS: &str = "rooms";
/// Context key: token expiry, seconds since the epoch.
pub const CONTEXT_EXP: &str = "exp";
/// Context key: whether direct messages are allowed.
pub const CONTEXT_DIRECT: &str = "direct";

/// The subprotocol a browser offers alongside its token.
pub const SUBPROTOCOL: &str = "roomcast";

/// The authorizer's output as API Gateway wants it.
pub type AuthorizerContext = Map<String, Value>;

/// Finds the token: `?token=` first, then `Sec-WebSocket-Protocol`.
pub fn token_from_request(
    query: &aws_lambda_events::query_map::QueryMap,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(t) = query.first("token").filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    let protocols = headers.get("sec-websocket-protocol")?.to_str().ok()?;
    let mut parts = protocols.split(',').map(str::trim);
    parts.find(|p| *p == SUBPROTOCOL)?;
    parts.next().filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Runs the authorizer: Allow with a context, or Deny. Never an error: a
/// Deny is API Gateway's 403, which is what a bad token deserves.
pub async fn authorize(
    verifier: &dyn Verify,
    origins: &OriginPolicy,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    authorize_with_reason(verifier, origins, event).await.0
}

/// [`authorize`], and why it denied, if it did.
pub async fn authorize_with_reason(
    verifier: &dyn Verify,
    origins: &OriginPolicy,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> (ApiGatewayCustomAuthorizerResponse, Option<AuthError>) {
    let request_id = event.request_context.request_id.as_deref().unwrap_or("-");
    let resource = event.method_arn.clone().unwrap_or_else(|| "*".into());
    match check(verifier, origins, event).await {
        Ok(identity) => {
            tracing::info!(request_id, user = %identity.user, "connect authorized");
            let mut response = policy(IamPolicyEffect::Allow, &resource, &identity.user);
            response.context = Value::Object(context(&identity));
            (response, None)
        }
        Err(reason) => {
            // The reason is logged; the token never is.
            tracing::warn!(request_id, %reason, "connect denied");
            (
                policy(IamPolicyEffect::Deny, &resource, "anonymous"),
                Some(reason),
            )
        }
    }
}

async fn check(
    verifier: &dyn Verify,
    origins: &OriginPolicy,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<Identity, AuthError> {
    let origin = event.headers.get("origin").and_then(|o| o.to_str().ok());
    if !origins.allows(origin) {
        return Err(AuthError::OriginNotAllowed(
            origin.unwrap_or_default().chars().take(100).collect(),
        ));
    }
    let token = token_from_request(&event.query_string_parameters, &event.headers)
        .ok_or(AuthError::Missing)?;
    verifier.verify(&token).await
}

fn policy(
    effect: IamPolicyEffect,
    resource: &str,
    principal: &str,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![resource.to_owned()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = document;
    response
}

fn context(identity: &Identity) -> AuthorizerContext {
    let rooms = serde_json::to_string(&identity.rooms).unwrap_or_else(|_| "{}".into());
    let mut ctx = Map::new();
    ctx.insert(CONTEXT_USER.into(), identity.user.clone().into());
    ctx.insert(CONTEXT_NAME.into(), identity.name.clone().into());
    ctx.insert(CONTEXT_ROOMS.into(), rooms.into());
    ctx.insert(CONTEXT_EXP.into(), identity.exp.into());
    ctx.insert(CONTEXT_DIRECT.into(), identity.direct.into());
    ctx
}

/// Reads the identity back from a later event's `requestContext.authorizer`.
/// Numbers and booleans are accepted as strings too, since API Gateway may
/// stringify context values.
pub fn context_from_event(fields: &HashMap<String, Value>) -> Result<Identity, AuthError> {
    let text = |k: &str| -> Option<String> {
        match fields.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let user = text(CONTEXT_USER)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| AuthError::MissingClaim(CONTEXT_USER.into()))?;
    let exp = text(CONTEXT_EXP)
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or_else(|| AuthError::MissingClaim(CONTEXT_EXP.into()))?;
    let rooms: RoomRights = match text(CONTEXT_ROOMS) {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| AuthError::InvalidClaims(e.to_string()))?
        }
        None => RoomRights::default(),
    };
    Ok(Identity {
        name: text(CONTEXT_NAME).unwrap_or_else(|| user.clone()),
        user,
        exp,
        rooms,
        direct: text(CONTEXT_DIRECT).as_deref() == Some("true"),
    })
}
