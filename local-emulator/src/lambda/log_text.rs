//! What log lines and the timeline say of an invocation: the trace root of
//! a trace header, the ids an event carries, a long text cut short.

use serde_json::Value;

/// `1-5759e988-bd862e3fe1be46a994272793` from a trace header
/// (`Root=1-…;Parent=…;Sampled=0`).
pub(crate) fn trace_root(header: &str) -> Option<String> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .map(str::to_owned)
}

/// The ids an API Gateway event carries, for the log lines about it.
#[derive(Debug, Default)]
pub(crate) struct EventIds {
    pub(crate) connection_id: Option<String>,
    pub(crate) request_id: Option<String>,
}

impl EventIds {
    pub(crate) fn of(event: &Value) -> Self {
        let ctx = &event["requestContext"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Self {
            connection_id: text(&ctx["connectionId"]),
            request_id: text(&ctx["requestId"]),
        }
    }
}

/// At most the first five lines and 600 characters of `text`, for a log.
pub(crate) fn first_lines(text: &str) -> String {
    let mut out: String = text.lines().take(5).collect::<Vec<_>>().join(" | ");
    if out.chars().count() > 600 {
        out = out.chars().take(600).collect::<String>() + "…";
    }
    out
}
