//! Counters and a latency histogram, served at `/metrics` in Prometheus'
//! text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// The emulator's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    connects: Mutex<BTreeMap<u16, u64>>,
    disconnects: Mutex<BTreeMap<u16, u64>>,
    api_calls: Mutex<BTreeMap<(String, String), u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert(0) += 1;
}

impl Metrics {
    pub(crate) fn connect(&self, status: u16) {
        bump(&self.connects, status);
    }

    pub(crate) fn disconnect(&self, code: u16) {
        bump(&self.disconnects, code);
    }

    pub(crate) fn api_call(&self, method: &str, result: &str) {
        bump(&self.api_calls, (method.to_owned(), result.to_owned()));
    }

    pub(crate) fn error(&self, kind: &str) {
        bump(&self.errors, kind.to_owned());
    }

    pub(crate) fn handler_latency(&self, route: &str, d: Duration) {
        let secs = d.as_secs_f64();
        let mut map = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = map.entry(route.to_owned()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.total += 1;
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, open_connections: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP roomcast_connections_open Open WebSocket connections."
        );
        let _ = writeln!(out, "# TYPE roomcast_connections_open gauge");
        let _ = writeln!(out, "roomcast_connections_open {open_connections}");
        let counter = |out: &mut String, name: &str, help: &str, rows: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let lock = |m: &Mutex<BTreeMap<u16, u64>>| {
            m.lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (format!("{{status=\"{k}\"}}"), *v))
                .collect::<Vec<_>>()
        };
        counter(
            &mut out,
            "roomcast_connects_total",
            "Upgrade attempts by HTTP status.",
            lock(&self.connects),
        );
        counter(
            &mut out,
            "roomcast_disconnects_total",
            "Closed connections by close code.",
            lock(&self.disconnects),
        );
        counter(
            &mut out,
            "roomcast_frames_in_total",
            "Data frames received.",
            vec![(String::new(), self.frames_in.load(Ordering::Relaxed))],
        );
        counter(
            &mut out,
            "roomcast_frames_out_total",
            "Data frames sent.",
            vec![(String::new(), self.frames_out.load(Ordering::Relaxed))],
        );
        let api = self
            .api_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((m, r), v)| (format!("{{method=\"{m}\",result=\"{r}\"}}"), *v))
            .collect();
        counter(
            &mut out,
            "roomcast_connections_api_calls_total",
            "@connections calls by method and result.",
            api,
        );
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (format!("{{kind=\"{k}\"}}"), *v))
            .collect();
        counter(
            &mut out,
            "roomcast_errors_total",
            "Handler errors, timeouts and rejected frames.",
            errors,
        );
        let _ = writeln!(
            out,
            "# HELP roomcast_handler_duration_seconds Handler invocation latency by route."
        );
        let _ = writeln!(out, "# TYPE roomcast_handler_duration_seconds histogram");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "roomcast_handler_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "roomcast_handler_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(
                out,
                "roomcast_handler_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "roomcast_handler_duration_seconds_count{{route=\"{route}\"}} {}",
                h.total
            );
        }
        out
    }
}
