//! EventBridge event patterns: parsed once (a pattern EventBridge would
//! refuse is an error naming where), matched against events as the
//! EventBridge user guide's "Amazon EventBridge event patterns", "Arrays in
//! Amazon EventBridge event patterns" and "Content filtering in Amazon
//! EventBridge event patterns" describe:
//!
//! - fields are ANDed, the values in a field's array ORed; a nested object
//!   matches the event's object at the same place;
//! - an event value that is an array matches if any element does;
//! - exact strings, numbers (compared as numbers), `true`, `false`, `null`;
//!   `prefix`, `suffix` (each optionally `equals-ignore-case`),
//!   `equals-ignore-case`, `wildcard`, `anything-but` (a value, a list, or
//!   a `prefix`, `suffix`, `equals-ignore-case` or `wildcard`), `numeric`
//!   (up to one lower and one upper bound, or `=`), `exists`, `cidr`
//!   (IPv4), and `$or` of two or more patterns.
//!
//! Where the guide is silent, this follows AWS's open-source matcher
//! (aws/event-ruler): `exists` and `anything-but` only see leaf values
//! (not objects), and `anything-but` needs the field to be present.

use serde_json::{Map, Value};

/// Why a pattern is refused. EventBridge answers
/// `InvalidEventPatternException`; the emulator refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Event pattern is not valid. Reason: {reason} at {path}")]
pub struct PatternError {
    /// Where in the pattern (`detail.state[0]`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// A parsed event pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    fields: Vec<(String, Node)>,
    ors: Vec<Vec<Pattern>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Object(Pattern),
    Leaf(Vec<Matcher>),
}

#[derive(Clone, Debug, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(Text),
    Suffix(Text),
    IgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(Box<Matcher>),
    AnyOf(Vec<Value>),
    IgnoreCaseAnyOf(Vec<String>),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
    Cidr { net: u32, mask: u32 },
}

/// A string to compare, case-sensitively or not (then held lowercased).
#[derive(Clone, Debug, PartialEq)]
struct Text {
    value: String,
    ignore_case: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// A wildcard pattern split at its unescaped `*`s.
#[derive(Clone, Debug, PartialEq)]
struct Wildcard(Vec<String>);

impl Pattern {
    /// Parses a pattern given as JSON text.
    pub fn parse_str(text: &str) -> Result<Self, PatternError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PatternError {
            path: "$".into(),
            reason: format!("not JSON: {e}"),
        })?;
        Self::parse(&value)
    }

    /// Parses a pattern (a JSON object).
    pub fn parse(value: &Value) -> Result<Self, PatternError> {
        match value {
            Value::Object(map) if !map.is_empty() => object(map, ""),
            Value::Object(_) => Err(err("", "an event pattern must not be empty")),
            _ => Err(err("", "an event pattern must be a JSON object")),
        }
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.matches_at(Some(event))
    }

    fn matches_at(&self, at: Option<&Value>) -> bool {
        let object = at.and_then(Value::as_object);
        let fields = self.fields.iter().all(|(key, node)| {
            let value = object.and_then(|o| o.get(key));
            match node {
                Node::Object(p) => p.matches_at(value.filter(|v| v.is_object())),
                Node::Leaf(ms) => ms.iter().any(|m| m.matches_field(value)),
            }
        });
        fields
            && self
                .ors
                .iter()
                .all(|alts| alts.iter().any(|p| p.matches_at(at)))
    }
}

fn err(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.into()
        },
        reason: reason.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn object(map: &Map<String, Value>, path: &str) -> Result<Pattern, PatternError> {
    let mut fields = Vec::new();
    let mut ors = Vec::new();
    for (key, value) in map {
        let here = join(path, key);
        if key == "$or" {
            ors.push(alternatives(value, &here)?);
            continue;
        }
        let node = match value {
            Value::Object(m) if m.is_empty() => {
                return Err(err(&here, "empty objects are not allowed"));
            }
            Value::Object(m) => Node::Object(object(m, &here)?),
            Value::Array(items) if items.is_empty() => {
                return Err(err(&here, "empty arrays are not allowed"));
            }
            Value::Array(items) => Node::Leaf(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| matcher(v, &format!("{here}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(err(
                    &here,
                    "match values must be in an array (or be a nested object)",
                ));
            }
        };
        fields.push((key.clone(), node));
    }
    Ok(Pattern { fields, ors })
}

fn alternatives(value: &Value, path: &str) -> Result<Vec<Pattern>, PatternError> {
    let items = value
        .as_array()
        .filter(|a| a.len() >= 2)
        .ok_or_else(|| err(path, "$or needs an array of at least two patterns"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Value::Object(m) if !m.is_empty() => object(m, path).map_err(|mut e| {
                if e.path == path {
                    e.path = format!("{path}[{i}]");
                }
                e
            }),
            _ => Err(err(
                &format!("{path}[{i}]"),
                "each $or alternative must be an object",
            )),
        })
        .collect()
}

fn matcher(value: &Value, path: &str) -> Result<Matcher, PatternError> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            Ok(Matcher::Exact(value.clone()))
        }
        Value::Array(_) => Err(err(path, "arrays cannot be nested in a match list")),
        Value::Object(m) => {
            let mut entries = m.iter();
            let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
                return Err(err(path, "a filter is an object with exactly one key"));
            };
            let here = join(path, op);
            match op.as_str() {
                "prefix" => Ok(Matcher::Prefix(text(arg, &here)?)),
                "suffix" => Ok(Matcher::Suffix(text(arg, &here)?)),
                "equals-ignore-case" => Ok(Matcher::IgnoreCase(string(arg, &here)?.to_lowercase())),
                "wildcard" => Ok(Matcher::Wildcard(wildcard(string(arg, &here)?, &here)?)),
                "anything-but" => anything_but(arg, &here),
                "numeric" => numeric(arg, &here),
                "exists" => arg
                    .as_bool()
                    .map(Matcher::Exists)
                    .ok_or_else(|| err(&here, "exists takes true or false")),
                "cidr" => cidr(string(arg, &here)?, &here),
                other => Err(err(path, format!("unrecognized match type {other}"))),
            }
        }
    }
}

fn string<'a>(arg: &'a Value, path: &str) -> Result<&'a str, PatternError> {
    arg.as_str().ok_or_else(|| err(path, "takes a string"))
}

/// `"s"` or `{"equals-ignore-case": "s"}` (prefix and suffix).
fn text(arg: &Value, path: &str) -> Result<Text, PatternError> {
    if let Some(s) = arg.as_str() {
        return Ok(Text {
            value: s.to_owned(),
            ignore_case: false,
        });
    }
    match arg
        .as_object()
        .map(|m| (m.len(), m.get("equals-ignore-case")))
    {
        Some((1, Some(Value::String(s)))) => Ok(Text {
            value: s.to_lowercase(),
            ignore_case: true,
        }),
        _ => Err(err(
            path,
            "takes a string or {\"equals-ignore-case\": string}",
        )),
    }
}

fn wildcard(s: &str, path: &str) -> Result<Wildcard, PatternError> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    let mut last_star = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('*' | '\\')) => {
                    if let Some(p) = parts.last_mut() {
                        p.push(e);
                    }
                    last_star = false;
                }
                _ => return Err(err(path, "a backslash escapes only * or \\")),
            },
            '*' if last_star => {
                return Err(err(path, "consecutive wildcard characters are not allowed"));
            }
            '*' => {
                parts.push(String::new());
                last_star = true;
            }
            c => {
                if let Some(p) = parts.last_mut() {
                    p.push(c);
                }
                last_star = false;
            }
        }
    }
    Ok(Wildcard(parts))
}

fn anything_but(arg: &Value, path: &str) -> Result<Matcher, PatternError> {
    let inner = match arg {
        Value::String(_) | Value::Number(_) => Matcher::AnyOf(vec![arg.clone()]),
        Value::Array(items) if !items.is_empty() => {
            let strings = items.iter().all(Value::is_string);
            let numbers = items.iter().all(Value::is_number);
            if !(strings || numbers) {
                return Err(err(
                    path,
                    "anything-but lists hold only strings or only numbers",
                ));
            }
            Matcher::AnyOf(items.clone())
        }
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((key, value)) if key == "equals-ignore-case" => ignore_case_list(value, path)?,
            Some((key, _)) if matches!(key.as_str(), "prefix" | "suffix" | "wildcard") => {
                matcher(arg, path)?
            }
            _ => {
                return Err(err(
                    path,
                    "anything-but takes a value, a list, prefix, suffix, equals-ignore-case or wildcard",
                ));
            }
        },
        _ => {
            return Err(err(
                path,
                "anything-but takes a value, a list, prefix, suffix, equals-ignore-case or wildcard",
            ));
        }
    };
    Ok(Matcher::AnythingBut(Box::new(inner)))
}

/// `equals-ignore-case` inside `anything-but` also takes a list.
fn ignore_case_list(arg: &Value, path: &str) -> Result<Matcher, PatternError> {
    let values: Vec<String> = match arg {
        Value::String(s) => vec![s.to_lowercase()],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect(),
        _ => {
            return Err(err(
                path,
                "equals-ignore-case takes a string or a list of strings",
            ));
        }
    };
    Ok(Matcher::IgnoreCaseAnyOf(values))
}

fn numeric(arg: &Value, path: &str) -> Result<Matcher, PatternError> {
    let items = arg
        .as_array()
        .filter(|a| !a.is_empty() && a.len() % 2 == 0 && a.len() <= 4)
        .ok_or_else(|| err(path, "numeric takes one or two (operator, number) pairs"))?;
    let mut bounds = Vec::new();
    for pair in items.chunks(2) {
        let op = match pair[0].as_str() {
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some("=") => Op::Eq,
            Some(">=") => Op::Ge,
            Some(">") => Op::Gt,
            _ => return Err(err(path, "numeric operators are <, <=, =, >=, >")),
        };
        let n = pair[1]
            .as_f64()
            .ok_or_else(|| err(path, "numeric bounds must be numbers"))?;
        bounds.push((op, n));
    }
    let lower = bounds
        .iter()
        .filter(|(o, _)| matches!(o, Op::Gt | Op::Ge))
        .count();
    let upper = bounds
        .iter()
        .filter(|(o, _)| matches!(o, Op::Lt | Op::Le))
        .count();
    let eq = bounds.iter().filter(|(o, _)| *o == Op::Eq).count();
    if lower > 1 || upper > 1 || (eq > 0 && bounds.len() > 1) {
        return Err(err(
            path,
            "numeric takes at most one lower and one upper bound, or one =",
        ));
    }
    Ok(Matcher::Numeric(bounds))
}

fn cidr(s: &str, path: &str) -> Result<Matcher, PatternError> {
    let bad = || err(path, "cidr takes an IPv4 block such as 10.0.0.0/24");
    let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let bits: u32 = bits.parse().ok().filter(|b| *b <= 32).ok_or_else(bad)?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Ok(Matcher::Cidr {
        net: u32::from(ip) & mask,
        mask,
    })
}

mod matching;

#[cfg(test)]
mod tests;
