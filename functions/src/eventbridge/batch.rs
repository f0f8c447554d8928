//! Packing events into `PutEvents` calls, by EventBridge's limits.

use roomcast_core::events::{DataOmitted, Event};

/// At most this many entries per `PutEvents` call (the API's limit; more is
/// a `ValidationException`).
pub const MAX_ENTRIES: usize = 10;

/// At most this many bytes of entries per call, counted as EventBridge
/// documents ("Calculating PutEvents event entry size": the UTF-8 bytes of
/// `Source`, `DetailType`, `Detail` and each resource, plus 14 for `Time`).
pub const MAX_BYTES: usize = 256 * 1024;

/// One entry, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The detail-type.
    pub detail_type: &'static str,
    /// The detail, serialised.
    pub detail: String,
    /// What identifies the event in logs (`room#seq`, a connection id…).
    pub key: String,
    /// Its size as EventBridge counts it.
    pub size: usize,
    /// Data was dropped to fit.
    pub trimmed: bool,
}

/// What could not be packed.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsendable {
    /// The detail-type.
    pub detail_type: &'static str,
    /// What identifies the event in logs.
    pub key: String,
    /// Its size even without data.
    pub size: usize,
}

/// The entry for `event` under `source`: whole if it fits in a call, else
/// without its `data` (flagged `dataOmitted: tooLarge`), else unsendable.
pub fn entry(source: &str, mut event: Event) -> Result<Entry, Unsendable> {
    let detail_type = event.detail_type();
    let key = event.key();
    let fits = |event: &Event, trimmed: bool| {
        let detail = event.detail().to_string();
        let size = source.len() + detail_type.len() + detail.len();
        (size <= MAX_BYTES)
            .then(|| Entry {
                detail_type,
                detail,
                key: key.clone(),
                size,
                trimmed,
            })
            .ok_or(size)
    };
    if let Ok(whole) = fits(&event, false) {
        return Ok(whole);
    }
    event.without_data(DataOmitted::TooLarge);
    fits(&event, true).map_err(|size| Unsendable {
        detail_type,
        key: key.clone(),
        size,
    })
}

/// Packs entries, in order, into as few calls as the limits allow.
pub fn pack(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut calls: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let fits = calls
            .last()
            .is_some_and(|c| c.len() < MAX_ENTRIES && bytes + e.size <= MAX_BYTES);
        if !fits {
            calls.push(Vec::new());
            bytes = 0;
        }
        bytes += e.size;
        if let Some(call) = calls.last_mut() {
            call.push(e);
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use roomcast_core::events::{MessageStored, Origin};
    use roomcast_core::protocol::Sender;

    fn message(data_bytes: usize) -> Event {
        Event::MessageStored(MessageStored {
            room: "r".into(),
            seq: 1,
            epoch: String::new(),
            id: "m".into(),
            from: Sender {
                user: "u".into(),
                name: "U".into(),
            },
            origin: Origin::Client,
            connection_id: None,
            data: Some(json!("x".repeat(data_bytes))),
            data_omitted: None,
            ts: 0,
        })
    }

    #[test]
    fn the_size_is_source_detail_type_and_detail_in_bytes() {
        let e = entry("roomcast", message(10)).unwrap();
        assert_eq!(
            e.size,
            "roomcast".len() + "Message Stored".len() + e.detail.len()
        );
        assert!(!e.trimmed);
    }

    #[test]
    fn an_entry_over_256_kb_goes_without_its_data_and_says_so() {
        let e = entry("roomcast", message(MAX_BYTES)).unwrap();
        assert!(e.trimmed);
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
        assert!(detail.get("data").is_none());
        assert_eq!(detail["dataOmitted"], "tooLarge");
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kb_in_order() {
        let small: Vec<Entry> = (0..23)
            .map(|_| entry("roomcast", message(10)).unwrap())
            .collect();
        let calls = pack(small);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 3]
        );
        let big: Vec<Entry> = (0..3)
            .map(|_| entry("roomcast", message(100 * 1024)).unwrap())
            .collect();
        let calls = pack(big);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        for c in &calls {
            assert!(c.iter().map(|e| e.size).sum::<usize>() <= MAX_BYTES);
        }
    }

    #[test]
    fn nothing_to_send_is_no_call() {
        assert!(pack(Vec::new()).is_empty());
    }
}
