//! Template values as JSON with every intrinsic function evaluated: what a
//! policy document, an event pattern or a target's `Input` is once
//! CloudFormation has resolved it. `Fn::If` may give a whole map or list,
//! and `!Ref AWS::NoValue` removes the property or list item it stands for
//! (CloudFormation User Guide, "Pseudo parameters reference": "Removes the
//! corresponding resource property when specified as a return value in the
//! Fn::If intrinsic function").

use serde_json::Value as Json;
use serde_yaml_ng::Value;

use super::Template;

/// A resolved value, or the absence `AWS::NoValue` stands for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Resolved {
    /// A value.
    Json(Json),
    /// `!Ref AWS::NoValue`: no value at all.
    NoValue,
}

impl Template {
    /// `v` with its intrinsics evaluated; `None` when some part cannot be
    /// evaluated offline (an `Fn::ImportValue`, say).
    pub(crate) fn resolve(&self, v: &Value) -> Option<Resolved> {
        if let Some((function, args)) = intrinsic(v) {
            return match function {
                "If" => {
                    let seq = args.as_sequence()?;
                    let branch = if self.condition(seq.first()?.as_str()?) {
                        seq.get(1)?
                    } else {
                        seq.get(2)?
                    };
                    self.resolve(branch)
                }
                "Ref" if args.as_str() == Some("AWS::NoValue") => Some(Resolved::NoValue),
                _ => self.eval(v).map(|s| Resolved::Json(Json::String(s))),
            };
        }
        Some(Resolved::Json(match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Json::from)
                .or_else(|| n.as_f64().map(Json::from))
                .unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.clone()),
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Resolved::Json(j) = self.resolve(item)? {
                        out.push(j);
                    }
                }
                Json::Array(out)
            }
            Value::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, item) in m {
                    let Some(k) = k.as_str() else { continue };
                    if let Resolved::Json(j) = self.resolve(item)? {
                        out.insert(k.to_owned(), j);
                    }
                }
                Json::Object(out)
            }
            Value::Tagged(_) => return None,
        }))
    }

    /// `v` resolved, with `AWS::NoValue` and what cannot be evaluated both
    /// as JSON `null` (event patterns and inputs, which skip nulls).
    pub(crate) fn to_json(&self, v: &Value) -> Json {
        match self.resolve(v) {
            Some(Resolved::Json(j)) => j,
            _ => Json::Null,
        }
    }
}

/// The intrinsic function `v` calls, without its `Fn::` or `!`, and its
/// arguments: a tag (`!Sub x`) or a one-key map (`{"Fn::Sub": x}`).
pub(super) fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            // A tag's name borrows from the tag, not from `v`: look it up
            // among the functions CloudFormation has.
            let name = FUNCTIONS
                .iter()
                .find(|f| tag.trim_start_matches('!') == **f)?;
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, args) = m.iter().next()?;
            let k = k.as_str()?;
            if k == "Ref" {
                Some(("Ref", args))
            } else {
                k.strip_prefix("Fn::").map(|f| (f, args))
            }
        }
        _ => None,
    }
}

/// The intrinsic functions a short-form tag may name.
const FUNCTIONS: &[&str] = &[
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Not",
    "Equals",
    "And",
    "Or",
    "Condition",
    "Select",
    "Split",
    "FindInMap",
    "ImportValue",
    "Base64",
    "GetAZs",
    "Cidr",
    "Length",
    "ToJsonString",
];
