//! The decision for one request, as IAM makes it for a role in its own
//! account (IAM User Guide, "Policy evaluation logic"): an explicit `Deny`
//! in any applicable policy wins; otherwise an identity-based policy must
//! `Allow` it, and, when the role has a permissions boundary, the boundary
//! must allow it too; anything else is an implicit deny.
//!
//! What the emulator cannot evaluate refuses rather than allows: an
//! `Allow` with a `Condition` allows nothing, a `Deny` with one denies, and
//! a role the template does not define allows nothing.

use super::policy::Policy;

/// A function's execution role, as the template defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    /// The role's name (`roomcast-local-MessageFunctionRole`).
    pub(crate) name: String,
    /// Its identity-based policies: inline, managed, SAM's templates.
    pub(crate) policies: Vec<Policy>,
    /// Its permissions boundary, when it has one.
    pub(crate) boundary: Option<Policy>,
    /// Why some of what the template grants could not be read (an unknown
    /// managed policy, a role defined outside the template): those rights
    /// are missing here, and a denial says so in the log.
    pub(crate) gaps: Vec<String>,
}

/// Why a request was refused, in IAM's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No identity-based policy allows it.
    Implicit,
    /// A `Deny` statement covers it.
    Explicit {
        /// The policy holding the statement.
        policy: String,
    },
    /// The permissions boundary does not allow it.
    Boundary,
}

/// An `Allow` that would have covered the request but for its condition:
/// worth a line in the log beside the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unevaluated {
    pub(crate) policy: String,
}

impl Role {
    /// IAM's decision for `action` on `resource`.
    pub(crate) fn decide(
        &self,
        action: &str,
        resource: &str,
    ) -> Result<(), (Refusal, Option<Unevaluated>)> {
        let mut allowed = false;
        let mut unevaluated = None;
        for policy in &self.policies {
            for s in policy
                .statements
                .iter()
                .filter(|s| s.covers(action, resource))
            {
                match (s.allow, s.conditional) {
                    // A Deny applies, with or without its condition: the
                    // emulator cannot tell the condition false.
                    (false, _) => {
                        return Err((
                            Refusal::Explicit {
                                policy: policy.name.clone(),
                            },
                            None,
                        ));
                    }
                    (true, false) => allowed = true,
                    (true, true) => {
                        unevaluated.get_or_insert(Unevaluated {
                            policy: policy.name.clone(),
                        });
                    }
                }
            }
        }
        if let Some(boundary) = &self.boundary {
            let covering = boundary
                .statements
                .iter()
                .filter(|s| s.covers(action, resource));
            let mut bounded = false;
            for s in covering {
                if !s.allow {
                    return Err((
                        Refusal::Explicit {
                            policy: boundary.name.clone(),
                        },
                        None,
                    ));
                }
                bounded |= !s.conditional;
            }
            if allowed && !bounded {
                return Err((Refusal::Boundary, None));
            }
        }
        if allowed {
            Ok(())
        } else {
            Err((Refusal::Implicit, unevaluated))
        }
    }
}

/// IAM's message for a refusal (IAM User Guide, "Troubleshoot access
/// denied error messages": "User: {principal} is not authorized to
/// perform: {action} on resource: {resource} because no identity-based
/// policy allows the {action} action", or "with an explicit deny in an
/// identity-based policy").
pub(crate) fn message(principal: &str, action: &str, resource: &str, refusal: &Refusal) -> String {
    let why = match refusal {
        Refusal::Implicit => format!("because no identity-based policy allows the {action} action"),
        Refusal::Explicit { .. } => "with an explicit deny in an identity-based policy".to_owned(),
        Refusal::Boundary => format!("because no permissions boundary allows the {action} action"),
    };
    format!(
        "User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(docs: &[serde_json::Value]) -> Role {
        Role {
            name: "r".into(),
            policies: docs
                .iter()
                .enumerate()
                .map(|(i, d)| Policy::parse(format!("p{i}"), d).unwrap())
                .collect(),
            boundary: None,
            gaps: Vec::new(),
        }
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/t";

    #[test]
    fn nothing_is_allowed_by_default() {
        // "Policy evaluation logic": "By default, all requests are
        // implicitly denied".
        let r = role(&[]);
        assert_eq!(
            r.decide("dynamodb:GetItem", TABLE),
            Err((Refusal::Implicit, None))
        );
    }

    #[test]
    fn an_allow_allows_and_an_explicit_deny_overrides_it() {
        // "An explicit deny in any policy overrides any allows."
        let r = role(&[
            json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE}]}),
        ]);
        assert_eq!(r.decide("dynamodb:GetItem", TABLE), Ok(()));
        assert_eq!(
            r.decide("dynamodb:DeleteItem", TABLE),
            Err((
                Refusal::Explicit {
                    policy: "p1".into()
                },
                None
            ))
        );
    }

    #[test]
    fn not_action_and_not_resource_allow_everything_else() {
        let r = role(&[json!({"Statement": [
            {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:dynamodb:*:*:table/secret"}
        ]})]);
        assert_eq!(r.decide("dynamodb:GetItem", TABLE), Ok(()));
        assert!(r.decide("iam:PassRole", TABLE).is_err());
        assert!(
            r.decide(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:000000000000:table/secret"
            )
            .is_err()
        );
    }

    #[test]
    fn conditions_refuse_rather_than_allow() {
        let r = role(&[json!({"Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*",
             "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["u1"]}}},
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:Query", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]})]);
        assert_eq!(
            r.decide("dynamodb:GetItem", TABLE),
            Err((
                Refusal::Implicit,
                Some(Unevaluated {
                    policy: "p0".into()
                })
            ))
        );
        assert!(matches!(
            r.decide("dynamodb:Query", TABLE),
            Err((Refusal::Explicit { .. }, None))
        ));
    }

    #[test]
    fn a_permissions_boundary_limits_what_the_policies_allow() {
        // "Permissions boundaries for IAM entities": the effective
        // permissions are what both the identity-based policies and the
        // boundary allow.
        let mut r =
            role(&[json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})]);
        r.boundary = Some(
            Policy::parse(
                "boundary",
                &json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}),
            )
            .unwrap(),
        );
        assert_eq!(r.decide("dynamodb:GetItem", TABLE), Ok(()));
        assert_eq!(
            r.decide("dynamodb:PutItem", TABLE),
            Err((Refusal::Boundary, None))
        );
    }

    #[test]
    fn the_message_is_iams() {
        let m = message(
            "arn:aws:sts::000000000000:assumed-role/r/f",
            "dynamodb:UpdateItem",
            TABLE,
            &Refusal::Implicit,
        );
        assert_eq!(
            m,
            "User: arn:aws:sts::000000000000:assumed-role/r/f is not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/t because no identity-based policy allows the dynamodb:UpdateItem action"
        );
    }
}
