//! The template's `Conditions`, evaluated as CloudFormation evaluates them
//! (AWS CloudFormation User Guide, "Condition functions"): `Fn::Equals`,
//! `Fn::Not`, `Fn::And`, `Fn::Or` and `Condition`, over parameter values
//! (defaults, or `--parameter-overrides`) and pseudo parameters. A resource
//! whose `Condition` is false is not created, and `Fn::If` takes its second
//! branch.

use serde_yaml_ng::Value;

use super::Template;

/// Conditions nest at most this deep (a loop in the template would
/// otherwise never end; CloudFormation refuses such a template).
const MAX_DEPTH: usize = 32;

impl Template {
    /// Whether the named condition holds. One that is not declared, or
    /// that cannot be evaluated offline, is false (and logged).
    pub(crate) fn condition(&self, name: &str) -> bool {
        self.named_condition(name, 0).unwrap_or_else(|| {
            tracing::warn!(
                condition = name,
                "the template's condition cannot be evaluated offline; taken as false"
            );
            false
        })
    }

    fn named_condition(&self, name: &str, depth: usize) -> Option<bool> {
        let body = self.conditions.get(name)?;
        self.condition_value(body, depth + 1)
    }

    fn condition_value(&self, v: &Value, depth: usize) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (function, args) = match v {
            Value::Tagged(t) => (t.tag.to_string(), &t.value),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next()?;
                (k.as_str()?.to_owned(), inner)
            }
            Value::Bool(b) => return Some(*b),
            Value::String(s) => return s.parse().ok(),
            _ => return None,
        };
        let function = function.trim_start_matches('!').trim_start_matches("Fn::");
        let list = || args.as_sequence().map(Vec::as_slice).unwrap_or_default();
        match function {
            "Equals" => match list() {
                [a, b] => Some(self.eval(a)? == self.eval(b)?),
                _ => None,
            },
            "Not" => match list() {
                [c] => self.condition_value(c, depth + 1).map(|b| !b),
                _ => None,
            },
            "And" => list().iter().try_fold(true, |all, c| {
                Some(all & self.condition_value(c, depth + 1)?)
            }),
            "Or" => list().iter().try_fold(false, |any, c| {
                Some(any | self.condition_value(c, depth + 1)?)
            }),
            "Condition" => self.named_condition(args.as_str()?, depth),
            _ => None,
        }
    }

    /// Whether a resource is created: it has no `Condition`, or its
    /// condition holds.
    pub(crate) fn created(&self, resource: &Value) -> bool {
        match resource.get("Condition").and_then(Value::as_str) {
            Some(name) => self.condition(name),
            None => true,
        }
    }
}
