//! Limits every client frame is validated against, and identity bounds the
//! wire format shares with tokens.

/// Longest user id (`sub`), in bytes.
pub const MAX_USER_ID_LEN: usize = 128;

/// Whether `id` may be a user id: 1 to [`MAX_USER_ID_LEN`] bytes, no
/// control character, no whitespace at either end. User ids are compared
/// byte for byte everywhere (revocations, kicks, direct messages, the
/// server API): one that differs from another only in surrounding
/// whitespace would look like it in every log and UI while being another
/// user, so such ids are refused where they enter, never trimmed.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_USER_ID_LEN
        && !id.chars().any(char::is_control)
        && !id.starts_with(char::is_whitespace)
        && !id.ends_with(char::is_whitespace)
}

/// Longest stream epoch a client may send back, in bytes. The server's are
/// 16 hex digits.
pub const MAX_EPOCH_LEN: usize = 64;

/// Whether `epoch` may be a stream epoch: 1 to [`MAX_EPOCH_LEN`] ASCII
/// letters, digits, `-` or `_`. Compared byte for byte.
pub fn valid_epoch(epoch: &str) -> bool {
    !epoch.is_empty()
        && epoch.len() <= MAX_EPOCH_LEN
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Limits that the protocol validates on every client frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest room name, in bytes. Default 128 (`ROOMCAST_MAX_ROOM_LEN`).
    pub max_room_len: usize,
    /// Longest client message id, in bytes. Default 64 (`ROOMCAST_MAX_ID_LEN`).
    pub max_id_len: usize,
    /// Largest `data` payload, as serialised JSON bytes. Default 32 KiB
    /// (`ROOMCAST_MAX_DATA_BYTES`), which fits API Gateway's frame limit.
    pub max_data_bytes: usize,
    /// Largest history page. Default 100 (`ROOMCAST_HISTORY_PAGE_MAX`).
    pub history_page_max: u32,
    /// History page size when the client gives no `limit`. Default 50.
    pub history_page_default: u32,
    /// Most missed messages returned by one `join` with `since`; beyond it
    /// `joined.more` is set and the client joins again. Default 500
    /// (`ROOMCAST_RESUME_MAX`).
    pub resume_max: u32,
    /// Longest token accepted by `auth`, in bytes. Default 8 KiB.
    pub max_token_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_room_len: 128,
            max_id_len: 64,
            max_data_bytes: 32 * 1024,
            history_page_max: 100,
            history_page_default: 50,
            resume_max: 500,
            max_token_len: 8 * 1024,
        }
    }
}

#[cfg(test)]
mod user_id_tests {
    use super::*;

    #[test]
    fn user_ids_are_taken_as_they_are_or_refused() {
        for ok in [
            "mallory",
            "Mallory",
            "a b",
            "ünïcode",
            "auth0|123",
            &"x".repeat(128),
        ] {
            assert!(valid_user_id(ok), "{ok:?}");
        }
        for bad in [
            "",
            " mallory",
            "mallory ",
            "\tmallory",
            "mallory\n",
            "mal\u{0}lory",
            "mal\u{7f}lory",
            "\u{a0}mallory",
            &"x".repeat(129),
        ] {
            assert!(!valid_user_id(bad), "{bad:?}");
        }
    }
}
