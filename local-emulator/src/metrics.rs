//! Counters and latency histograms, served at `/metrics` in Prometheus'
//! text format (version 0.0.4).
//!
//! Each metric is a [`Family`]: a name, a help line and its series keyed by
//! their rendered label set, so adding a metric is one field and one line
//! in [`Metrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histograms' buckets.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// Cumulative bucket counts, as Prometheus expects them.
#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (count, le) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= le {
                *count += 1;
            }
        }
        self.sum += secs;
        self.total += 1;
    }
}

/// One metric: its series keyed by their rendered labels (`{a="x"}`).
#[derive(Debug)]
struct Family<V> {
    name: &'static str,
    help: &'static str,
    series: Mutex<BTreeMap<String, V>>,
}

impl<V: Default> Family<V> {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn with(&self, labels: &[(&str, &str)], f: impl FnOnce(&mut V)) {
        // A poisoned lock only means a panic elsewhere mid-update; counts
        // stay usable.
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        f(series.entry(render_labels(labels)).or_default());
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }
}

impl Family<u64> {
    fn bump(&self, labels: &[(&str, &str)]) {
        self.with(labels, |v| *v += 1);
    }

    fn render(&self, out: &mut String) {
        self.header(out, "counter");
        for (labels, v) in self.series.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "{}{labels} {v}", self.name);
        }
    }
}

impl Family<Histogram> {
    fn observe(&self, labels: &[(&str, &str)], d: Duration) {
        self.with(labels, |h| h.observe(d.as_secs_f64()));
    }

    fn render(&self, out: &mut String) {
        self.header(out, "histogram");
        let name = self.name;
        for (labels, h) in self.series.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            // `{route="x"}` → `route="x",` so `le` can be appended.
            let inner = labels.trim_start_matches('{').trim_end_matches('}');
            let sep = if inner.is_empty() { "" } else { "," };
            for (count, le) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"{le}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {}", h.total);
            let _ = writeln!(out, "{name}_sum{labels} {}", h.sum);
            let _ = writeln!(out, "{name}_count{labels} {}", h.total);
        }
    }
}

/// `{a="x",b="y"}` with values escaped as the text format requires, or
/// nothing when there are no labels.
fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// What a POST to `@connections` can come to (`apigateway::post`).
const POST_RESULTS: [&str; 6] = [
    "ok",
    "gone",
    "too_large",
    "throttled",
    "denied",
    "bad_request",
];

/// The emulator's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    connects: Family<u64>,
    disconnects: Family<u64>,
    api_calls: Family<u64>,
    /// POSTs by result, apart from `api_calls`: a post is made per
    /// recipient of every fan-out, so it is counted with an atomic add,
    /// not a labelled series' lock and key.
    posts: [AtomicU64; POST_RESULTS.len()],
    errors: Family<u64>,
    events_calls: Family<u64>,
    events_put: Family<u64>,
    events_matched: Family<u64>,
    latency: Family<Histogram>,
    function_init: Family<Histogram>,
    function_duration: Family<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            connects: Family::new(
                "roomcast_connects_total",
                "Upgrade attempts by HTTP status.",
            ),
            disconnects: Family::new(
                "roomcast_disconnects_total",
                "Closed connections by close code.",
            ),
            posts: Default::default(),
            api_calls: Family::new(
                "roomcast_connections_api_calls_total",
                "@connections calls by method and result.",
            ),
            errors: Family::new(
                "roomcast_errors_total",
                "Handler errors, timeouts and rejected frames.",
            ),
            events_calls: Family::new(
                "roomcast_eventbridge_calls_total",
                "EventBridge API calls by operation.",
            ),
            events_put: Family::new(
                "roomcast_eventbridge_entries_total",
                "PutEvents entries, accepted or failed.",
            ),
            events_matched: Family::new(
                "roomcast_eventbridge_matches_total",
                "Events that matched a rule, by rule.",
            ),
            latency: Family::new(
                "roomcast_handler_duration_seconds",
                "Handler invocation latency by route.",
            ),
            function_init: Family::new(
                "roomcast_function_init_duration_seconds",
                "Process functions: start to the first Runtime API /next, by function.",
            ),
            function_duration: Family::new(
                "roomcast_function_invocation_duration_seconds",
                "Process functions: invocation to answer (init included when cold), by function.",
            ),
        }
    }
}

impl Metrics {
    pub(crate) fn connect(&self, status: u16) {
        self.connects.bump(&[("status", &status.to_string())]);
    }

    pub(crate) fn disconnect(&self, code: u16) {
        self.disconnects.bump(&[("status", &code.to_string())]);
    }

    pub(crate) fn api_call(&self, method: &str, result: &str) {
        if method == "POST"
            && let Some(i) = POST_RESULTS.iter().position(|r| *r == result)
        {
            self.posts[i].fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.api_calls
            .bump(&[("method", method), ("result", result)]);
    }

    pub(crate) fn error(&self, kind: &str) {
        self.errors.bump(&[("kind", kind)]);
    }

    pub(crate) fn event_call(&self, operation: &str) {
        self.events_calls.bump(&[("operation", operation)]);
    }

    pub(crate) fn event_put(&self, result: &str) {
        self.events_put.bump(&[("result", result)]);
    }

    pub(crate) fn event_matched(&self, rule: &str) {
        self.events_matched.bump(&[("rule", rule)]);
    }

    pub(crate) fn handler_latency(&self, route: &str, d: Duration) {
        self.latency.observe(&[("route", route)], d);
    }

    pub(crate) fn function_init(&self, function: &str, d: Duration) {
        self.function_init.observe(&[("function", function)], d);
    }

    pub(crate) fn function_duration(&self, function: &str, d: Duration) {
        self.function_duration.observe(&[("function", function)], d);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, open_connections: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP roomcast_connections_open Open WebSocket connections.\n\
             # TYPE roomcast_connections_open gauge\n\
             roomcast_connections_open {open_connections}"
        );
        self.connects.render(&mut out);
        self.disconnects.render(&mut out);
        simple_counter(
            &mut out,
            "roomcast_frames_in_total",
            "Data frames received.",
            &self.frames_in,
        );
        simple_counter(
            &mut out,
            "roomcast_frames_out_total",
            "Data frames sent.",
            &self.frames_out,
        );
        self.api_calls.render(&mut out);
        for (result, count) in POST_RESULTS.iter().zip(&self.posts) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let labels = render_labels(&[("method", "POST"), ("result", result)]);
                let _ = writeln!(out, "{}{labels} {count}", self.api_calls.name);
            }
        }
        self.errors.render(&mut out);
        self.events_calls.render(&mut out);
        self.events_put.render(&mut out);
        self.events_matched.render(&mut out);
        self.latency.render(&mut out);
        self.function_init.render(&mut out);
        self.function_duration.render(&mut out);
        out
    }
}

fn simple_counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
        value.load(Ordering::Relaxed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_the_text_format() {
        let m = Metrics::default();
        m.connect(101);
        m.connect(101);
        m.connect(401);
        m.api_call("POST", "ok");
        m.handler_latency("$default", Duration::from_millis(3));
        let out = m.render(2);
        for line in [
            "roomcast_connections_open 2",
            "roomcast_connects_total{status=\"101\"} 2",
            "roomcast_connects_total{status=\"401\"} 1",
            "roomcast_frames_in_total 0",
            "roomcast_connections_api_calls_total{method=\"POST\",result=\"ok\"} 1",
            "roomcast_handler_duration_seconds_bucket{route=\"$default\",le=\"0.0025\"} 0",
            "roomcast_handler_duration_seconds_bucket{route=\"$default\",le=\"0.005\"} 1",
            "roomcast_handler_duration_seconds_bucket{route=\"$default\",le=\"+Inf\"} 1",
            "roomcast_handler_duration_seconds_count{route=\"$default\"} 1",
            "# TYPE roomcast_handler_duration_seconds histogram",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.error("a\"b\\c\nd");
        let out = m.render(0);
        assert!(
            out.contains(r#"roomcast_errors_total{kind="a\"b\\c\nd"} 1"#),
            "{out}"
        );
    }
}
