#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};

use super::start;
use crate::faults::{FaultRequest, Faults};
use crate::inspector::Timeline;

/// A port nothing listens on (bound, then released).
async fn dead_port() -> u16 {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    l.local_addr().unwrap().port()
}

async fn call(url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .header("content-type", "application/x-amz-json-1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_cases_are_answered_as_dynamodb_would_and_the_proxy_keeps_serving() {
    let faults = Arc::new(Faults::default());
    let timeline = Arc::new(Timeline::new(10));
    let upstream = format!("http://127.0.0.1:{}", dead_port().await);
    let proxy = start(
        &upstream,
        super::Checks {
            faults: faults.clone(),
            timeline: timeline.clone(),
            iam: None,
            region: "us-east-1".into(),
        },
    )
    .await
    .unwrap();
    // DynamoDB behind it is unreachable: a server error the SDKs retry.
    let (status, body) = call(&proxy.url, b"{}".to_vec()).await;
    assert_eq!(status, 502);
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#InternalServerError"
    );
    // Larger than any DynamoDB request: refused before it is read whole.
    let (status, body) = call(&proxy.url, vec![b' '; super::MAX_REQUEST_BYTES + 1]).await;
    assert_eq!(status, 413);
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#ValidationException"
    );
    // An injected throttle, as DynamoDB answers one, on the timeline.
    let fault = json!({"fault": "store-error", "error": "throttling", "count": 1});
    faults.add(FaultRequest::from_json(fault).unwrap()).unwrap();
    let (status, body) = call(&proxy.url, b"{}".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#ThrottlingException"
    );
    let stored: Vec<Value> = serde_json::from_str(&timeline.snapshot()).unwrap();
    assert!(
        stored.iter().any(|e| e["kind"] == "store"
            && e["operation"] == "GetItem"
            && e["error"] == "throttling"),
        "{stored:?}"
    );
    // Used up: the next call goes through (to the unreachable upstream).
    assert_eq!(call(&proxy.url, b"{}".to_vec()).await.0, 502);
}
