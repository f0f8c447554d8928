//! What a verified token says: who the user is and which rooms they may use.
//!
//! Room rights come from a `rooms` claim mapping glob patterns to rights, for
//! example `{"public.*": ["join","send"], "team-42.*": ["join","send","presence"]}`.
//! Anything the claim does not grant is denied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use roomcast_protocol::MAX_USER_ID_LEN;

/// Longest display name kept; longer names are cut at a character boundary.
pub const MAX_NAME_LEN: usize = 64;

/// One right a room pattern can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Join the room and receive its messages and history.
    Join,
    /// Publish messages and typing indicators to the room.
    Send,
    /// See who is present: the member list and presence and typing events.
    Presence,
    /// Edit and delete anyone's messages in the room (with `send`, a member
    /// edits and deletes its own).
    Moderate,
}

/// The `rooms` claim: glob pattern → rights. Deny by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomRights(BTreeMap<String, Vec<Right>>);

impl RoomRights {
    /// Rights from pattern/right pairs.
    pub fn new(map: BTreeMap<String, Vec<Right>>) -> Self {
        Self(map)
    }

    /// Every right on every room (dev tokens).
    pub fn all() -> Self {
        Self(BTreeMap::from([(
            "*".to_owned(),
            vec![Right::Join, Right::Send, Right::Presence],
        )]))
    }

    /// Whether any pattern matching `room` grants `right`.
    pub fn allows(&self, room: &str, right: Right) -> bool {
        self.0
            .iter()
            .any(|(pattern, rights)| rights.contains(&right) && glob_match(pattern, room))
    }

    /// True when no pattern grants anything.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

/// Matches `*` (any run, including empty) and `?` (one character).
/// Iterative with one backtrack point, so it is linear-ish and cannot blow up.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The verified identity behind a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user id (`sub`).
    pub user: String,
    /// The display name (`name`, else `sub`).
    pub name: String,
    /// Token expiry, seconds since the epoch.
    pub exp: i64,
    /// Room rights.
    pub rooms: RoomRights,
    /// Whether the user may send direct messages.
    pub direct: bool,
}

/// Cuts a display name to [`MAX_NAME_LEN`] bytes at a character boundary and
/// strips control characters, so names are safe to show and to store.
pub fn clean_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_NAME_LEN {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("public.*", "public.lobby"));
        assert!(glob_match("public.*", "public."));
        assert!(!glob_match("public.*", "public"));
        assert!(!glob_match("public.*", "private.lobby"));
        assert!(glob_match("team-?.chat", "team-4.chat"));
        assert!(!glob_match("team-?.chat", "team-42.chat"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        // Many stars against a near-miss stay fast: one backtrack point only.
        let pattern = format!("{}b", "a*".repeat(50));
        assert!(!glob_match(&pattern, &"a".repeat(200)));
    }

    #[test]
    fn rights_deny_by_default() {
        let rights: RoomRights = serde_json::from_str(
            r#"{"public.*":["join","send"],"team-42.*":["join","send","presence"]}"#,
        )
        .unwrap();
        assert!(rights.allows("public.lobby", Right::Join));
        assert!(rights.allows("public.lobby", Right::Send));
        assert!(!rights.allows("public.lobby", Right::Presence));
        assert!(rights.allows("team-42.dev", Right::Presence));
        assert!(!rights.allows("team-43.dev", Right::Join));
        assert!(!RoomRights::default().allows("anything", Right::Join));
        assert!(RoomRights::default().is_empty());
        assert!(RoomRights::all().allows("x", Right::Presence));
    }

    #[test]
    fn unknown_rights_do_not_parse() {
        assert!(serde_json::from_str::<RoomRights>(r#"{"*":["admin"]}"#).is_err());
        assert!(serde_json::from_str::<RoomRights>(r#"{"*":"join"}"#).is_err());
    }

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(clean_name("Ali\u{0}ce\n"), "Alice");
        let long = "é".repeat(100);
        let cut = clean_name(&long);
        assert!(cut.len() <= MAX_NAME_LEN);
        assert_eq!(cut.chars().count(), MAX_NAME_LEN / 2);
    }
}
