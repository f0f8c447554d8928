//! `PutEvents` requests: the checks EventBridge makes, call-wide (a
//! `ValidationException`) and per entry (an `ErrorCode` in the result, the
//! call still 200 with `FailedEntryCount`), as its API reference
//! ("PutEvents", "PutEventsRequestEntry", "PutEventsResultEntry") and the
//! user guide's "Calculating PutEvents event entry size" describe.

use serde_json::Value;

use super::rules::bus_name;

/// At most this many entries per call.
pub(crate) const MAX_ENTRIES: usize = 10;
/// At most this many bytes of entries per call.
pub(crate) const MAX_BYTES: usize = 256 * 1024;

/// One valid entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) source: String,
    pub(crate) detail_type: String,
    pub(crate) detail: Value,
    pub(crate) resources: Vec<String>,
    pub(crate) time_ms: Option<i64>,
    /// The bus, by name (`default` when not given).
    pub(crate) bus: String,
}

/// A refused entry: its `ErrorCode` and `ErrorMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The call itself is refused: `ValidationException` with this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallError(pub(crate) String);

/// Checks a request body; each entry is valid or carries its error.
pub(crate) fn check(body: &Value) -> Result<Vec<Result<Entry, EntryError>>, CallError> {
    let entries = body
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| CallError("1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null".into()))?;
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        let bound = if entries.is_empty() {
            "greater than or equal to 1"
        } else {
            "less than or equal to 10"
        };
        return Err(CallError(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    let total: usize = entries.iter().map(size).sum();
    if total > MAX_BYTES {
        return Err(CallError(format!(
            "Total size of the entries in the request is over the limit ({total} bytes; at most {MAX_BYTES})."
        )));
    }
    Ok(entries.iter().map(entry).collect())
}

/// An entry's size as EventBridge counts it.
fn size(e: &Value) -> usize {
    let text = |k: &str| e.get(k).and_then(Value::as_str).map_or(0, str::len);
    let resources: usize = e.get("Resources").and_then(Value::as_array).map_or(0, |r| {
        r.iter().filter_map(Value::as_str).map(str::len).sum()
    });
    let time = if e.get("Time").is_some() { 14 } else { 0 };
    text("Source") + text("DetailType") + text("Detail") + resources + time
}

fn entry(e: &Value) -> Result<Entry, EntryError> {
    let required = |k: &'static str| {
        e.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EntryError {
                code: "InvalidArgument",
                message: format!("Parameter {k} is not valid. Reason: {k} is a required argument."),
            })
    };
    let source = required("Source")?;
    let detail_type = required("DetailType")?;
    let detail_text = required("Detail")?;
    let detail = serde_json::from_str::<Value>(detail_text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| EntryError {
            code: "MalformedDetail",
            message: "Detail is malformed.".into(),
        })?;
    let resources = e
        .get("Resources")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // The SDKs send `Time` as epoch seconds (awsJson1_1 timestamps).
    let time_ms = e
        .get("Time")
        .and_then(Value::as_f64)
        .map(|s| (s * 1000.0) as i64);
    let bus = bus_name(
        e.get("EventBusName")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    Ok(Entry {
        source: source.to_owned(),
        detail_type: detail_type.to_owned(),
        detail,
        resources,
        time_ms,
        bus: bus.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(e: Value) -> Result<Entry, EntryError> {
        check(&json!({"Entries": [e]})).unwrap().remove(0)
    }

    #[test]
    fn more_than_ten_entries_or_none_is_a_validation_error() {
        // PutEvents: "Entries … Array Members: Minimum number of 1 item.
        // Maximum number of 10 items."
        let e = json!({"Source": "s", "DetailType": "t", "Detail": "{}"});
        assert!(check(&json!({"Entries": vec![e.clone(); 11]})).is_err());
        assert!(check(&json!({"Entries": []})).is_err());
        assert!(check(&json!({})).is_err());
        assert_eq!(check(&json!({"Entries": vec![e; 10]})).unwrap().len(), 10);
    }

    #[test]
    fn over_256_kb_in_total_is_a_validation_error() {
        // "Calculating PutEvents event entry size".
        let detail = json!({"x": "y".repeat(100 * 1024)}).to_string();
        let e = json!({"Source": "s", "DetailType": "t", "Detail": detail});
        assert!(check(&json!({"Entries": [e.clone(), e.clone(), e]})).is_err());
    }

    #[test]
    fn entries_need_source_detail_type_and_a_json_object_detail() {
        let missing = one(json!({"DetailType": "t", "Detail": "{}"})).unwrap_err();
        assert_eq!(missing.code, "InvalidArgument");
        assert!(missing.message.contains("Source"), "{missing:?}");
        assert_eq!(
            one(json!({"Source": "s", "DetailType": "t", "Detail": "[1]"}))
                .unwrap_err()
                .code,
            "MalformedDetail"
        );
        assert_eq!(
            one(json!({"Source": "s", "DetailType": "t", "Detail": "{nope"}))
                .unwrap_err()
                .code,
            "MalformedDetail"
        );
    }

    #[test]
    fn a_valid_entry_keeps_its_bus_resources_and_time() {
        let e = one(json!({
            "Source": "roomcast", "DetailType": "Message Stored", "Detail": "{\"room\":\"r\"}",
            "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/chat",
            "Resources": ["arn:x"], "Time": 1_800_000_000.5
        }))
        .unwrap();
        assert_eq!(e.bus, "chat");
        assert_eq!(e.resources, vec!["arn:x".to_owned()]);
        assert_eq!(e.time_ms, Some(1_800_000_000_500));
        assert_eq!(e.detail, json!({"room": "r"}));
        assert_eq!(
            one(json!({"Source": "s", "DetailType": "t", "Detail": "{}"}))
                .unwrap()
                .bus,
            "default"
        );
    }
}
