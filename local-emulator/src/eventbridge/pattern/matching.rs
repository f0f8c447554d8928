//! Matching an event against a parsed pattern: each matcher against the
//! event's leaf values at its path (arrays match when any element does).

use serde_json::Value;

use super::{Matcher, Op, Text, Wildcard};

impl Matcher {
    /// Whether the field (absent, a leaf, or an array of leaves) matches.
    pub(super) fn matches_field(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (Self::Exists(want), None) => !want,
            (Self::Exists(want), Some(v)) => *want == has_leaf(v),
            (_, None) => false,
            (Self::AnythingBut(inner), Some(v)) => {
                let leaves = leaves(v);
                !leaves.is_empty() && !leaves.iter().any(|l| inner.matches_leaf(l))
            }
            (_, Some(v)) => leaves(v).iter().any(|l| self.matches_leaf(l)),
        }
    }

    fn matches_leaf(&self, v: &Value) -> bool {
        match self {
            Self::Exact(want) => same(want, v),
            Self::Prefix(t) => v
                .as_str()
                .is_some_and(|s| t.compare(s, |s, p| s.starts_with(p))),
            Self::Suffix(t) => v
                .as_str()
                .is_some_and(|s| t.compare(s, |s, p| s.ends_with(p))),
            Self::IgnoreCase(want) => v.as_str().is_some_and(|s| s.to_lowercase() == *want),
            Self::Wildcard(w) => v.as_str().is_some_and(|s| w.matches(s)),
            Self::AnyOf(values) => values.iter().any(|want| same(want, v)),
            Self::IgnoreCaseAnyOf(values) => v
                .as_str()
                .is_some_and(|s| values.contains(&s.to_lowercase())),
            Self::Numeric(bounds) => v
                .as_f64()
                .filter(|_| v.is_number())
                .is_some_and(|n| bounds.iter().all(|(op, b)| op.holds(n, *b))),
            Self::Cidr { net, mask } => v
                .as_str()
                .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
                .is_some_and(|ip| u32::from(ip) & mask == *net),
            // Only reached through `matches_field`.
            Self::Exists(_) | Self::AnythingBut(_) => false,
        }
    }
}

/// The leaves a field offers: itself, or an array's non-object elements.
fn leaves(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().filter(|i| !i.is_object()).collect(),
        Value::Object(_) => Vec::new(),
        leaf => vec![leaf],
    }
}

fn has_leaf(v: &Value) -> bool {
    !leaves(v).is_empty()
}

/// Equal as EventBridge compares: numbers by value, the rest exactly.
fn same(want: &Value, v: &Value) -> bool {
    match (want, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == v,
    }
}

impl Text {
    fn compare(&self, s: &str, f: impl Fn(&str, &str) -> bool) -> bool {
        if self.ignore_case {
            f(&s.to_lowercase(), &self.value)
        } else {
            f(s, &self.value)
        }
    }
}

impl Op {
    fn holds(self, n: f64, bound: f64) -> bool {
        match self {
            Self::Lt => n < bound,
            Self::Le => n <= bound,
            Self::Eq => n == bound,
            Self::Ge => n >= bound,
            Self::Gt => n > bound,
        }
    }
}

impl Wildcard {
    /// Whether `s` is the parts in order, with anything between them.
    fn matches(&self, s: &str) -> bool {
        let Some((first, rest)) = self.0.split_first() else {
            return s.is_empty();
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == first;
        };
        let Some(mut tail) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        for part in middle {
            match tail.find(part.as_str()) {
                Some(i) => tail = &tail[i + part.len()..],
                None => return false,
            }
        }
        tail.ends_with(last.as_str())
    }
}
