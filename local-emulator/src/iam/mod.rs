//! IAM, as AWS enforces it on the calls a function makes with its
//! execution role. moto and DynamoDB Local enforce no IAM, so without this
//! a function whose role lacks a right works offline and fails in AWS.
//!
//! Each function run as a process gets credentials of its own (as Lambda
//! gives each function its role's session credentials), and every AWS call
//! that reaches the emulator signed with them is checked against the
//! function's role, built from the template (`roles`): DynamoDB through
//! the pass-through, `@connections`, the Lambda Invoke API and EventBridge
//! `PutEvents`. A refusal answers with each service's
//! `AccessDeniedException` and IAM's message, and is logged with the
//! function, action and resource, kept on the timeline and counted.
//!
//! Calls signed with any other credentials (the developer's SDK, the CLI,
//! the in-process functions) are not checked: this checks the template's
//! roles, it is no security boundary.

mod evaluate;
mod managed;
mod policy;
mod roles;
mod sam_templates;

#[cfg(test)]
mod sam_conformance;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

pub(crate) use evaluate::Role;
pub(crate) use policy::{action_matches, arn_matches};

use crate::template::{ACCOUNT, FunctionSpec, Template};
use crate::timeline::Timeline;

/// The session credentials a function's processes get
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A function calling with its role.
#[derive(Debug)]
pub(crate) struct Principal {
    /// The function's logical id.
    pub(crate) function: String,
    /// `arn:aws:sts::{account}:assumed-role/{role}/{function name}`, as
    /// the role's session for a Lambda function is named.
    pub(crate) arn: String,
    role: Role,
    secret: String,
}

/// One action on one resource, as IAM authorizes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// `dynamodb:PutItem`.
    pub(crate) action: String,
    /// The resource's ARN, or `*` for actions without resource-level
    /// permissions.
    pub(crate) resource: String,
}

impl Request {
    pub(crate) fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
        }
    }
}

/// A refused call: each service renders it as its own
/// `AccessDeniedException`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Denied {
    /// IAM's message, naming the principal, action and resource.
    pub(crate) message: String,
}

/// The roles of the template's functions, and who is calling.
pub(crate) struct Iam {
    by_key: HashMap<String, Arc<Principal>>,
    by_function: BTreeMap<String, Credentials>,
    timeline: Arc<Timeline>,
    denied: AtomicU64,
    /// The latest refusals' messages, for [`crate::AccessDenials`].
    recent: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// Refusals kept for [`Iam::recent`].
const RECENT: usize = 32;

impl Iam {
    /// Roles for `functions` from the template, with fresh credentials for
    /// each. What a role grants that cannot be read is logged here, once.
    pub(crate) fn new(
        template: &Template,
        region: &str,
        functions: &[FunctionSpec],
        timeline: Arc<Timeline>,
    ) -> Self {
        let mut roles = roles::of_functions(template, region);
        let mut by_key = HashMap::new();
        let mut by_function = BTreeMap::new();
        for spec in functions {
            let Some(role) = roles.remove(&spec.logical_id) else {
                continue;
            };
            for gap in &role.gaps {
                tracing::warn!(function = %spec.logical_id, role = %role.name, "IAM: {gap}");
            }
            let credentials = fresh_credentials();
            let principal = Principal {
                function: spec.logical_id.clone(),
                arn: format!(
                    "arn:aws:sts::{ACCOUNT}:assumed-role/{}/{}",
                    role.name, spec.function_name
                ),
                role,
                secret: credentials.secret_access_key.clone(),
            };
            by_key.insert(credentials.access_key_id.clone(), Arc::new(principal));
            by_function.insert(spec.logical_id.clone(), credentials);
        }
        Self {
            by_key,
            by_function,
            timeline,
            denied: AtomicU64::new(0),
            recent: std::sync::Mutex::default(),
        }
    }

    /// The credentials function `logical_id`'s processes run with.
    pub(crate) fn credentials(&self, logical_id: &str) -> Option<&Credentials> {
        self.by_function.get(logical_id)
    }

    /// The function a request was signed by, if any: the access key in its
    /// SigV4 `Authorization` header is one the emulator gave a function.
    pub(crate) fn caller(&self, headers: &http::HeaderMap) -> Option<Arc<Principal>> {
        let key = access_key(headers)?;
        self.by_key.get(key).cloned()
    }

    /// The secret of a function's access key (for SigV4 verification).
    pub(crate) fn secret(&self, access_key: &str) -> Option<String> {
        self.by_key.get(access_key).map(|p| p.secret.clone())
    }

    /// Checks a request signed by a function: `requests` (built only then)
    /// against its role. Requests signed otherwise pass.
    pub(crate) fn check_signed(
        &self,
        headers: &http::HeaderMap,
        requests: impl FnOnce() -> Vec<Request>,
    ) -> Result<(), Denied> {
        match self.caller(headers) {
            Some(caller) => self.authorize(&caller, &requests()),
            None => Ok(()),
        }
    }

    /// Whether `caller` may make every one of `requests`; the first refusal
    /// is logged, kept on the timeline, counted and returned.
    pub(crate) fn authorize(&self, caller: &Principal, requests: &[Request]) -> Result<(), Denied> {
        for r in requests {
            let Err((refusal, unevaluated)) = caller.role.decide(&r.action, &r.resource) else {
                continue;
            };
            let message = evaluate::message(&caller.arn, &r.action, &r.resource, &refusal);
            self.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                function = %caller.function,
                action = %r.action,
                resource = %r.resource,
                role = %caller.role.name,
                condition_not_evaluated = unevaluated.as_ref().map(|u| u.policy.as_str()),
                gaps = ?caller.role.gaps,
                "AccessDeniedException: the function's role does not allow this call (IAM as AWS enforces it; --no-iam turns the check off)"
            );
            self.timeline.record_now(
                "iam",
                json!({
                    "function": caller.function,
                    "action": r.action,
                    "resource": r.resource,
                    "decision": "denied",
                    "message": message,
                }),
            );
            if let Ok(mut recent) = self.recent.lock() {
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(format!("{}: {message}", caller.function));
            }
            return Err(Denied { message });
        }
        Ok(())
    }

    /// The latest refusals, each `function: message`.
    pub(crate) fn recent(&self) -> Vec<String> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Calls refused so far.
    pub(crate) fn denials(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Prometheus lines.
    pub(crate) fn render_metrics(&self) -> String {
        format!(
            "# HELP roomcast_iam_denied_total AWS calls of process functions refused by their role.\n# TYPE roomcast_iam_denied_total counter\nroomcast_iam_denied_total {}\n",
            self.denials()
        )
    }
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("functions", &self.by_function.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The access key id of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …`).
fn access_key(headers: &http::HeaderMap) -> Option<&str> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let credential = rest
        .split(',')
        .map(str::trim)
        .find_map(|f| f.strip_prefix("Credential="))?;
    credential.split_once('/').map(|(key, _)| key)
}

/// Credentials shaped as a role session's: an `ASIA…` key id, a 40
/// character secret, a session token; random per emulator run.
fn fresh_credentials() -> Credentials {
    let random = || uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    Credentials {
        access_key_id: format!("ASIA{}", &random()[..16]),
        secret_access_key: format!("{}{}", random(), &random()[..8]).to_lowercase(),
        session_token: format!("{}{}", random(), random()),
    }
}

#[cfg(test)]
mod tests;
