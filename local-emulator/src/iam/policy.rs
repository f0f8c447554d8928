//! IAM policy documents and the matching of one request against them
//! (IAM User Guide, "IAM JSON policy element reference": `Effect`,
//! `Action`/`NotAction`, `Resource`/`NotResource`, `Condition`).

use serde_json::Value as Json;

/// A policy document's statements, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// For logs: `MessageFunctionRolePolicy1`, a managed policy's ARN, a
    /// SAM policy template's name.
    pub(crate) name: String,
    pub(crate) statements: Vec<Statement>,
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) allow: bool,
    /// `Action` (listed) or `NotAction` (everything but).
    pub(crate) actions: List,
    /// `Resource` or `NotResource`.
    pub(crate) resources: List,
    /// Whether it has a `Condition`, which the emulator does not evaluate:
    /// an `Allow` with one allows nothing here, a `Deny` with one denies.
    pub(crate) conditional: bool,
}

/// Patterns that match (`Action`, `Resource`) or that exclude (`NotAction`,
/// `NotResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum List {
    Of(Vec<String>),
    AllBut(Vec<String>),
}

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PolicyError {
    /// Not an object with a `Statement` list (or one statement).
    #[error("the policy document has no Statement")]
    NoStatement,
    /// A statement lacks `Effect`, or it is neither `Allow` nor `Deny`.
    #[error("statement {0}: Effect must be Allow or Deny")]
    Effect(usize),
    /// A statement has neither or both of `Action` and `NotAction` (or of
    /// `Resource` and `NotResource`).
    #[error("statement {0}: {1}")]
    Element(usize, &'static str),
}

impl Policy {
    /// Reads a policy document (JSON, intrinsics already resolved).
    pub(crate) fn parse(name: impl Into<String>, doc: &Json) -> Result<Self, PolicyError> {
        let statements = match doc.get("Statement") {
            Some(Json::Array(list)) => list.iter().collect(),
            Some(one @ Json::Object(_)) => vec![one],
            _ => return Err(PolicyError::NoStatement),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| Statement::parse(i, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: name.into(),
            statements,
        })
    }
}

impl Statement {
    fn parse(i: usize, s: &Json) -> Result<Self, PolicyError> {
        let allow = match s.get("Effect").and_then(Json::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(PolicyError::Effect(i)),
        };
        let actions = list(s, "Action", "NotAction").ok_or(PolicyError::Element(
            i,
            "needs exactly one of Action and NotAction",
        ))?;
        let resources = list(s, "Resource", "NotResource").ok_or(PolicyError::Element(
            i,
            "needs exactly one of Resource and NotResource",
        ))?;
        Ok(Self {
            allow,
            actions,
            resources,
            conditional: s.get("Condition").is_some_and(|c| !c.is_null()),
        })
    }

    /// Whether the statement covers `action` on `resource`, its condition
    /// aside.
    pub(crate) fn covers(&self, action: &str, resource: &str) -> bool {
        let action_in = |p: &String| action_matches(p, action);
        let resource_in = |p: &String| arn_matches(p, resource);
        let actions = match &self.actions {
            List::Of(p) => p.iter().any(action_in),
            List::AllBut(p) => !p.iter().any(action_in),
        };
        actions
            && match &self.resources {
                List::Of(p) => p.iter().any(resource_in),
                List::AllBut(p) => !p.iter().any(resource_in),
            }
    }
}

/// `Action` or `NotAction` (one of them, strings or a list of strings).
fn list(s: &Json, yes: &str, no: &str) -> Option<List> {
    let strings = |v: &Json| -> Option<Vec<String>> {
        match v {
            Json::String(one) => Some(vec![one.clone()]),
            Json::Array(many) => many.iter().map(|m| m.as_str().map(str::to_owned)).collect(),
            _ => None,
        }
    };
    match (s.get(yes), s.get(no)) {
        (Some(v), None) => strings(v).map(List::Of),
        (None, Some(v)) => strings(v).map(List::AllBut),
        _ => None,
    }
}

/// IAM User Guide, "IAM JSON policy elements: Action": "The prefix and the
/// action name are case insensitive", and a `*` or `?` may stand anywhere
/// in the name (`dynamodb:Get*`, `*`).
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

/// IAM User Guide, "IAM JSON policy elements: Resource": a `*` alone is
/// every resource; otherwise the ARN is matched segment by segment (the
/// parts between colons, case-sensitive), each segment allowing `*` (any
/// characters) and `?` (one character); "If the * wildcard is the last
/// character of a resource ARN segment, it can expand to match beyond the
/// colon boundaries."
pub(crate) fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    for (i, segment) in pattern.iter().enumerate() {
        if segment.ends_with('*') {
            // The rest of the pattern, from this segment on, against the
            // rest of the ARN: the segment's final `*` may span colons.
            let rest = arn.get(i..).map(|r| r.join(":")).unwrap_or_default();
            return glob(pattern[i..].join(":").as_bytes(), rest.as_bytes());
        }
        match arn.get(i) {
            Some(part) if glob(segment.as_bytes(), part.as_bytes()) => {}
            _ => return false,
        }
    }
    pattern.len() == arn.len()
}

/// `*` and `?` globbing, iteratively (linear in the common cases, never
/// recursive: a policy is the template author's, but a resource may carry
/// a caller's text).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_match_case_insensitively_with_wildcards() {
        // "IAM JSON policy elements: Action": case-insensitive, wildcards.
        assert!(action_matches("dynamodb:GetItem", "dynamodb:getitem"));
        assert!(action_matches("DynamoDB:Get*", "dynamodb:GetItem"));
        assert!(action_matches("*", "lambda:InvokeFunction"));
        assert!(action_matches("dynamodb:*Item", "dynamodb:BatchGetItem"));
        assert!(action_matches("s3:?etObject", "s3:GetObject"));
        assert!(!action_matches("dynamodb:GetItem", "dynamodb:GetItems"));
        assert!(!action_matches("dynamodb:Get*", "dynamodb:BatchGetItem"));
        assert!(!action_matches("dynamo:*", "dynamodb:GetItem"));
    }

    #[test]
    fn resources_match_by_arn_segment() {
        // "IAM JSON policy elements: Resource": wildcards within segments.
        let table = "arn:aws:dynamodb:us-east-1:000000000000:table/roomcast";
        assert!(arn_matches("*", table));
        assert!(arn_matches(table, table));
        assert!(arn_matches("arn:aws:dynamodb:*:*:table/*", table));
        assert!(arn_matches(
            "arn:aws:dynamodb:us-east-?:000000000000:table/room*",
            table
        ));
        assert!(!arn_matches(
            "arn:aws:dynamodb:us-east-1:000000000000:table/roomcast2",
            table
        ));
        assert!(!arn_matches(
            "arn:aws:dynamodb:us-west-2:000000000000:table/roomcast",
            table
        ));
        // A table's ARN does not cover its indexes (SAM's DynamoDB policy
        // templates list `table/T/index/*` for that).
        assert!(!arn_matches(table, &format!("{table}/index/byRoom")));
        assert!(arn_matches(
            &format!("{table}/index/*"),
            &format!("{table}/index/byRoom")
        ));
        // Case matters in ARNs.
        assert!(!arn_matches(
            "arn:aws:dynamodb:us-east-1:000000000000:table/Roomcast",
            table
        ));
    }

    #[test]
    fn a_trailing_wildcard_spans_colons() {
        // "If the * wildcard is the last character of a resource ARN
        // segment, it can expand to match beyond the colon boundaries."
        let alias = "arn:aws:lambda:us-east-1:000000000000:function:fanout:live";
        assert!(arn_matches(
            "arn:aws:lambda:us-east-1:000000000000:function:fanout*",
            alias
        ));
        assert!(arn_matches("arn:aws:lambda:*", alias));
        assert!(!arn_matches(
            "arn:aws:lambda:us-east-1:000000000000:function:fanout",
            alias
        ));
        // execute-api: the resource segment holds slashes.
        let post = "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/POST/@connections/Xy0=";
        assert!(arn_matches(
            "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/*/@connections/*",
            post
        ));
        assert!(!arn_matches(
            "arn:aws:execute-api:us-east-1:000000000000:abc123/dev/*/@connections/*",
            post
        ));
    }

    #[test]
    fn globbing_stays_linear_on_hostile_input() {
        let pattern = "*a*a*a*a*a*a*a*a*b".as_bytes();
        let text = "a".repeat(5_000);
        assert!(!glob(pattern, text.as_bytes()));
    }

    #[test]
    fn statements_read_every_element_form() {
        let p = Policy::parse(
            "p",
            &json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": ["a", "b"]},
                {"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "c",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
            ]}),
        )
        .unwrap();
        assert_eq!(p.statements.len(), 2);
        assert!(p.statements[0].allow && !p.statements[0].conditional);
        assert!(!p.statements[1].allow && p.statements[1].conditional);
        assert!(p.statements[1].covers("dynamodb:PutItem", "d"));
        assert!(!p.statements[1].covers("iam:PassRole", "d"));
        assert!(!p.statements[1].covers("dynamodb:PutItem", "c"));
        // A single statement object is a list of one.
        let one = Policy::parse(
            "one",
            &json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        )
        .unwrap();
        assert_eq!(one.statements.len(), 1);
    }

    #[test]
    fn malformed_statements_are_refused() {
        for doc in [
            json!({}),
            json!({"Statement": [{"Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [1], "Resource": "*"}]}),
        ] {
            assert!(Policy::parse("p", &doc).is_err(), "{doc}");
        }
    }
}
