//! Reads top-level scalar fields of a JSON object without parsing it whole.
//!
//! A frame that serde rejects (nested past its limit, a number like `1e400`,
//! a syntax error late in the text) may still name its `ref`, `type`, `room`
//! or `seq` near the start. The server uses this to put the client's `ref`
//! on every error reply; the clients use it to skip an unreadable frame
//! without losing their place in the stream. The scanner is iterative, reads
//! each byte at most once and never allocates for nested values, so hostile
//! input costs linear time and constant stack.

use serde_json::Value;

/// The top-level scalar fields found, in document order, each as its JSON
/// value. Object and array values are skipped, not returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopLevel {
    fields: Vec<(String, Value)>,
}

impl TopLevel {
    /// The first value of `name`, if it was found and is a readable scalar.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A string field.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// A non-negative integer field.
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(Value::as_u64)
    }
}

/// Scans `text` as a JSON object and returns its top-level scalar fields up
/// to the first syntax error or the end of the object. Not an object: none.
pub fn top_level(text: &str) -> TopLevel {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    let mut found = TopLevel::default();
    s.ws();
    if !s.eat(b'{') {
        return found;
    }
    loop {
        s.ws();
        if s.eat(b'}') {
            break;
        }
        let Some(key) = s.string().and_then(decode) else {
            break;
        };
        s.ws();
        if !s.eat(b':') {
            break;
        }
        s.ws();
        match s.value() {
            Some(Some(raw)) => {
                if let Ok(v) = serde_json::from_str::<Value>(raw) {
                    found.fields.push((key, v));
                }
            }
            Some(None) => {}
            None => break,
        }
        s.ws();
        if !s.eat(b',') {
            break;
        }
    }
    found
}

fn decode(raw: &str) -> Option<String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string token, quotes included, as raw text.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return self.text.get(start..self.at);
                }
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
    }

    /// One value. `Some(Some(raw))` for a scalar, `Some(None)` for a
    /// skipped object or array, `None` on a syntax error or the end.
    fn value(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'"' => self.string().map(Some),
            b'{' | b'[' => self.skip_container().map(|()| None),
            _ => {
                let start = self.at;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                (self.at > start)
                    .then(|| self.text.get(start..self.at))
                    .flatten()
                    .map(Some)
            }
        }
    }

    /// Skips a nested object or array of any depth with a counter.
    fn skip_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b'"' => {
                    self.string()?;
                }
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_scalars_and_skips_containers() {
        let t = top_level(
            r#" {"action":"send","data":{"a":[1,{"b":"}"}]},"ref":7,"ok":true,"n":null} "#,
        );
        assert_eq!(t.str("action"), Some("send"));
        assert_eq!(t.get("ref"), Some(&json!(7)));
        assert_eq!(t.get("ok"), Some(&json!(true)));
        assert_eq!(t.get("n"), Some(&json!(null)));
        assert_eq!(t.get("data"), None);
    }

    #[test]
    fn finds_the_ref_in_frames_serde_rejects() {
        let deep = format!(
            r#"{{"ref":"r1","action":"send","data":{}1{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert_eq!(top_level(&deep).str("ref"), Some("r1"));
        let deep_first = format!(
            r#"{{"data":{}1{},"ref":"r2"}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert_eq!(top_level(&deep_first).str("ref"), Some("r2"));
        let huge = r#"{"ref":3,"action":"send","x":1e400}"#;
        assert!(serde_json::from_str::<Value>(huge).is_err());
        let t = top_level(huge);
        assert_eq!(t.u64("ref"), Some(3));
        assert_eq!(
            t.get("x"),
            None,
            "an unreadable number is left out, not guessed"
        );
    }

    #[test]
    fn stops_at_the_first_syntax_error_keeping_what_came_before() {
        let t = top_level(r#"{"ref":"a","type":"message" "room":"x"}"#);
        assert_eq!(t.str("ref"), Some("a"));
        assert_eq!(t.str("type"), Some("message"));
        assert_eq!(t.str("room"), None);
        assert_eq!(
            top_level(r#"{"ref":"a""#).str("ref"),
            Some("a"),
            "a complete value before the cut counts"
        );
        assert_eq!(top_level(r#"{"ref":"unterminated"#).get("ref"), None);
        assert_eq!(top_level(r#"{"a":[1,2"#), TopLevel::default());
        assert_eq!(top_level(r#"{"a":]]]]]"#), TopLevel::default());
    }

    #[test]
    fn junk_and_non_objects_yield_nothing() {
        for junk in [
            "",
            "   ",
            "null",
            "[1,2]",
            "\"str\"",
            "{",
            "}",
            "{\"",
            "\\",
            "{\"\\",
            "\u{0}\u{ffff}",
            "{{{{",
            "{\"k\":",
        ] {
            assert_eq!(top_level(junk), TopLevel::default(), "{junk:?}");
        }
    }

    #[test]
    fn escaped_keys_and_strings_decode() {
        let t = top_level(r#"{"r\u0065f":"a\"b","room":"l\\o"}"#);
        assert_eq!(t.str("ref"), Some("a\"b"));
        assert_eq!(t.str("room"), Some("l\\o"));
    }

    #[test]
    fn every_prefix_of_a_frame_is_safe() {
        let frame =
            r#"{"type":"joined","room":"r","seq":12,"missed":[{"data":{"t":"é\"}"}}],"ref":4}"#;
        for end in 0..=frame.len() {
            if let Some(prefix) = frame.get(..end) {
                let _ = top_level(prefix);
            }
        }
        let t = top_level(frame);
        assert_eq!(
            (t.str("type"), t.str("room"), t.u64("seq"), t.u64("ref")),
            (Some("joined"), Some("r"), Some(12), Some(4))
        );
    }
}
