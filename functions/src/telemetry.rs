//! CloudWatch Embedded Metric Format (EMF): one JSON line per invocation on
//! stdout, which CloudWatch turns into metrics without any API call.
//!
//! The handler layer opens a [`scope`] per invocation; code anywhere inside
//! it (the domain included) records with [`add`], which is a no-op outside a
//! scope, so unit tests and the emulator pay nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::time::Instant;

use serde_json::{Map, Value, json};

/// The namespace of every Roomcast metric.
pub const NAMESPACE: &str = "Roomcast";

/// What Roomcast measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Client frames handled.
    Messages,
    /// Recipients targeted by fan-outs.
    FanoutSize,
    /// Frames the gateway accepted.
    Delivered,
    /// Connections found gone during fan-out.
    GoneConnections,
    /// Frames answered with an error (bad input, rights, rate limit).
    Rejects,
    /// Handler latency, milliseconds.
    Latency,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Self::Messages => "Messages",
            Self::FanoutSize => "FanoutSize",
            Self::Delivered => "Delivered",
            Self::GoneConnections => "GoneConnections",
            Self::Rejects => "Rejects",
            Self::Latency => "Latency",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Latency => "Milliseconds",
            _ => "Count",
        }
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
            let line = RECORD.with(|r| {
                render(
                    function,
                    &r.borrow(),
                    crate::clock::Clock::now_ms(&crate::clock::SystemClock),
                )
            });
            let mut stdout = std::io::stdout().lock();
            // EMF is a stdout protocol; a failed write loses a metric, nothing more.
            let _ = writeln!(stdout, "{line}");
            out
        })
        .await
}

/// Runs `f` and returns what it recorded, without writing anything (tests).
pub async fn collect<F: Future>(f: F) -> (F::Output, BTreeMap<Metric, f64>) {
    RECORD
        .scope(RefCell::new(BTreeMap::new()), async {
            let out = f.await;
            (out, RECORD.with(|r| r.borrow().clone()))
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
