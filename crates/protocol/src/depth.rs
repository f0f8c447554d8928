//! Nesting depth of JSON values.
//!
//! serde_json refuses documents nested deeper than 128 levels, and so do
//! some browsers' parsers at other limits. A message's `data` is wrapped by
//! up to three more levels when it is sent again (`joined.missed`,
//! `history.messages`), so the server bounds the depth of `data` well inside
//! every parser's limit, at [`MAX_DATA_DEPTH`].

use serde_json::Value;

/// Deepest `data` the server accepts: a scalar is depth 0, `{}` and `[]`
/// are 1, `{"a":[1]}` is 2. Frames that carry `data` add at most 3 levels,
/// so every frame stays under 40 levels.
pub const MAX_DATA_DEPTH: usize = 32;

/// The nesting depth of `value`, computed without recursion, so any value
/// that was parsed can be measured.
pub fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(level + 1);
                stack.extend(items.iter().map(|i| (i, level + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(level + 1);
                stack.extend(map.values().map(|i| (i, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_depth_zero_and_containers_add_one() {
        assert_eq!(nesting_depth(&json!(1)), 0);
        assert_eq!(nesting_depth(&json!("x")), 0);
        assert_eq!(nesting_depth(&json!({})), 1);
        assert_eq!(nesting_depth(&json!([])), 1);
        assert_eq!(nesting_depth(&json!({"a": [1, {"b": null}]})), 3);
        assert_eq!(nesting_depth(&json!([[1], [[2]], 3])), 3);
    }

    #[test]
    fn deep_values_are_measured_without_recursion() {
        let mut v = json!(0);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(nesting_depth(&v), 100_000);
        // Drop iteratively too: serde_json's recursive drop would overflow.
        let mut cur = v;
        while let Value::Array(mut items) = cur {
            cur = items.pop().unwrap_or(Value::Null);
        }
    }
}
