//! CloudWatch Embedded Metric Format (EMF): one JSON line per invocation on
//! stdout, which CloudWatch turns into metrics without any API call.
//!
//! The handler layer opens a [`scope`] per invocation; the domain records
//! through the [`Metrics`] port, whose [`Emf`] adapter adds to the current
//! scope (a no-op outside one, so the emulator pays nothing).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::time::Instant;

use roomcast_core::clock::{Clock, SystemClock};
use roomcast_core::metrics::{Metric, Metrics};
use serde_json::{Map, Value, json};

/// The namespace of every Roomcast metric.
pub const NAMESPACE: &str = "Roomcast";

/// The EMF adapter of the [`Metrics`] port: records into the current
/// invocation's [`scope`]; outside a scope it records nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Emf;

impl Metrics for Emf {
    fn add(&self, metric: Metric, value: f64) {
        add(metric, value);
    }
}

tokio::task_local! {
    static RECORD: RefCell<BTreeMap<Metric, f64>>;
}

/// Adds `value` to `metric` for the current invocation.
pub fn add(metric: Metric, value: f64) {
    let _ = RECORD.try_with(|r| *r.borrow_mut().entry(metric).or_insert(0.0) += value);
}

/// Runs `f` as one invocation of `function`, then writes its EMF line.
pub async fn scope<F: Future>(function: &str, f: F) -> F::Output {
    RECORD
        .scope(RefCell::new(BTreeMap::new()), async {
            let started = Instant::now();
            let out = f.await;
            add(Metric::Latency, started.elapsed().as_secs_f64() * 1000.0);
            let line = RECORD.with(|r| render(function, &r.borrow(), SystemClock.now_ms()));
            let mut stdout = std::io::stdout().lock();
            // EMF is a stdout protocol; a failed write loses a metric, nothing more.
            let _ = writeln!(stdout, "{line}");
            out
        })
        .await
}

/// One EMF document for `function` with `metrics`.
pub fn render(function: &str, metrics: &BTreeMap<Metric, f64>, timestamp_ms: i64) -> String {
    let definitions: Vec<Value> = metrics
        .keys()
        .map(|m| json!({"Name": m.name(), "Unit": m.unit()}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert("Function".into(), json!(function));
    for (m, v) in metrics {
        doc.insert(m.name().into(), json!(v));
    }
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_emf() {
        let metrics = BTreeMap::from([(Metric::FanoutSize, 3.0), (Metric::Latency, 1.5)]);
        let v: Value = serde_json::from_str(&render("message", &metrics, 42)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 42);
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Roomcast");
        assert_eq!(cw["Dimensions"], json!([["Function"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "FanoutSize", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}])
        );
        assert_eq!(
            (v["Function"].clone(), v["FanoutSize"].clone()),
            (json!("message"), json!(3.0))
        );
    }

    #[tokio::test]
    async fn add_outside_a_scope_is_a_no_op_and_inside_accumulates() {
        add(Metric::Messages, 1.0);
        let seen = RECORD
            .scope(RefCell::new(BTreeMap::new()), async {
                add(Metric::Delivered, 2.0);
                add(Metric::Delivered, 3.0);
                RECORD.with(|r| r.borrow().clone())
            })
            .await;
        assert_eq!(seen, BTreeMap::from([(Metric::Delivered, 5.0)]));
    }
}
