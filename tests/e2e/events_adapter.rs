//! The EventBridge adapter against a scripted EventBridge on 127.0.0.1
//! (awsJson1_1, as the service answers): throttled calls and failed
//! entries are retried, refusals and what outlives the deadline are
//! counted, oversize entries go without their data, and an unreachable
//! service costs at most the retry window, never an error to the caller.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use roomcast_aws::eventbridge::{EventBridgeEvents, EventsConfig};
use roomcast_core::events::{Event, Events, MessageStored, Origin};
use roomcast_core::metrics::{Metric, RecordedMetrics};
use roomcast_core::protocol::Sender;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One canned answer: status, `__type` (for errors) and body.
type Answer = (u16, Option<&'static str>, Value);

/// A fake EventBridge that answers from a script and records each call's
/// entries.
struct Scripted {
    url: String,
    calls: Arc<Mutex<Vec<Vec<Value>>>>,
}

impl Scripted {
    async fn start(script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, recorded) = (script.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (script, recorded) = (script.clone(), recorded.clone());
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let entries = v["Entries"].as_array().cloned().unwrap_or_default();
                            let n = entries.len();
                            recorded.lock().unwrap().push(entries);
                            let (status, kind, body) = script
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or((200, None, accepted(n)));
                            let mut r = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body.to_string()),
                            ));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            r.headers_mut().insert(
                                "content-type",
                                "application/x-amz-json-1.1".parse().unwrap(),
                            );
                            if let Some(kind) = kind {
                                r.headers_mut()
                                    .insert("x-amzn-ErrorType", kind.parse().unwrap());
                            }
                            Ok::<_, hyper::Error>(r)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, calls }
    }

    fn calls(&self) -> Vec<Vec<Value>> {
        self.calls.lock().unwrap().clone()
    }
}

fn accepted(n: usize) -> Value {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"EventId": format!("e{i}")}))
        .collect();
    json!({"FailedEntryCount": 0, "Entries": entries})
}

fn message(seq: u64, data: Value) -> Event {
    Event::MessageStored(MessageStored {
        room: "r".into(),
        seq,
        epoch: String::new(),
        id: format!("m{seq}"),
        from: Sender {
            user: "u".into(),
            name: "U".into(),
        },
        origin: Origin::Client,
        connection_id: None,
        data: Some(data),
        data_omitted: None,
        ts: 0,
    })
}

async fn adapter(
    url: &str,
    retry_window: Duration,
) -> (EventBridgeEvents, &'static RecordedMetrics) {
    let metrics: &'static RecordedMetrics = Box::leak(Box::default());
    let mut config = EventsConfig::new("roomcast-test");
    config.retry_window = retry_window;
    config.call_timeout = Duration::from_secs(2);
    let sdk = common::sdk().await;
    (
        EventBridgeEvents::new(&sdk, config, Some(url), metrics),
        metrics,
    )
}

/// Generous: each put gives up by its retry window; this only catches a hang.
const DEADLOCK: Duration = Duration::from_secs(30);

async fn put(events: &EventBridgeEvents, batch: Vec<Event>) {
    tokio::time::timeout(DEADLOCK, events.put(batch, None))
        .await
        .expect("put returns");
}

#[tokio::test]
async fn a_throttled_call_is_sent_again_and_nothing_is_lost() {
    // awsJson services answer throttling with 400 and the code in __type.
    let throttled = (
        400,
        Some("ThrottlingException"),
        json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
    );
    let eb = Scripted::start(vec![throttled.clone(), throttled]).await;
    let (events, metrics) = adapter(&eb.url, Duration::from_secs(10)).await;
    put(&events, vec![message(1, json!(1)), message(2, json!(2))]).await;
    let calls = eb.calls();
    assert_eq!(calls.len(), 3, "two throttled, then accepted");
    assert!(calls.iter().all(|c| c.len() == 2));
    let entry = &calls[2][0];
    assert_eq!(entry["Source"], "roomcast");
    assert_eq!(entry["DetailType"], "Message Stored");
    assert_eq!(entry["EventBusName"], "roomcast-test");
    let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["seq"], 1);
    assert!(!metrics.take().contains_key(&Metric::EventsFailed));
}

#[tokio::test]
async fn only_the_entries_that_failed_retryably_are_sent_again() {
    let partial = json!({"FailedEntryCount": 2, "Entries": [
        {"EventId": "a"},
        {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
        {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    ]});
    let eb = Scripted::start(vec![(200, None, partial)]).await;
    let (events, metrics) = adapter(&eb.url, Duration::from_secs(10)).await;
    put(
        &events,
        vec![
            message(1, json!(1)),
            message(2, json!(2)),
            message(3, json!(3)),
        ],
    )
    .await;
    let calls = eb.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].len(), 1, "only the throttled entry again");
    let detail: Value = serde_json::from_str(calls[1][0]["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["seq"], 2);
    assert_eq!(
        metrics.take().get(&Metric::EventsFailed),
        Some(&1.0),
        "the malformed one"
    );
}

#[tokio::test]
async fn a_refused_call_is_not_retried_and_is_counted() {
    let denied = (
        400,
        Some("AccessDeniedException"),
        json!({"__type": "AccessDeniedException", "message": "not allowed"}),
    );
    let eb = Scripted::start(vec![denied]).await;
    let (events, metrics) = adapter(&eb.url, Duration::from_secs(10)).await;
    put(&events, vec![message(1, json!(1)), message(2, json!(2))]).await;
    assert_eq!(eb.calls().len(), 1);
    assert_eq!(metrics.take().get(&Metric::EventsFailed), Some(&2.0));
}

#[tokio::test]
async fn an_unreachable_eventbridge_costs_the_retry_window_and_is_counted() {
    // A port nothing listens on: every attempt fails at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (events, metrics) = adapter(&format!("http://{closed}"), Duration::from_millis(300)).await;
    put(&events, vec![message(1, json!(1))]).await;
    assert_eq!(metrics.take().get(&Metric::EventsFailed), Some(&1.0));
}

#[tokio::test]
async fn entries_over_256_kb_go_without_data_and_calls_hold_ten() {
    let eb = Scripted::start(Vec::new()).await;
    let (events, metrics) = adapter(&eb.url, Duration::from_secs(10)).await;
    let mut batch = vec![message(1, json!("x".repeat(300 * 1024)))];
    batch.extend((2..=12).map(|s| message(s, json!(s))));
    put(&events, batch).await;
    let mut calls = eb.calls();
    calls.sort_by_key(Vec::len);
    assert_eq!(
        calls.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 10],
        "12 entries: ten, then two"
    );
    let all: Vec<Value> = calls
        .iter()
        .flatten()
        .map(|e| serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap())
        .collect();
    let big = all.iter().find(|d| d["seq"] == 1).unwrap();
    assert!(big.get("data").is_none());
    assert_eq!(big["dataOmitted"], "tooLarge");
    let m = metrics.take();
    assert_eq!(m.get(&Metric::EventsTrimmed), Some(&1.0));
    assert!(!m.contains_key(&Metric::EventsFailed));
}
