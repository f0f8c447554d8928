#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};

use super::start;
use crate::faults::{FaultRequest, Faults};
use crate::timeline::Timeline;

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
            upstream_timeout: None,
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

/// An upstream that answers `reply` to every request, or holds the
/// connection silent (`None`). Stops with the test.
async fn upstream(reply: Option<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            match &reply {
                Some(bytes) => {
                    let reply = bytes.clone();
                    tokio::spawn(async move {
                        let _ = sock.write_all(&reply).await;
                    });
                }
                None => held.push(sock),
            }
        }
    });
    url
}

fn checks(timeout: Option<std::time::Duration>) -> super::Checks {
    super::Checks {
        faults: Arc::new(Faults::default()),
        timeline: Arc::new(Timeline::new(10)),
        iam: None,
        region: "us-east-1".into(),
        upstream_timeout: timeout,
    }
}

/// An endpoint that is not DynamoDB (or is misbehaving) costs the emulator
/// neither memory nor a stuck function: an answer over DynamoDB's largest
/// (16 MB) is refused, announced or streamed, and a silent endpoint times
/// out; each as a server error the SDKs retry.
#[tokio::test]
async fn oversize_and_silent_upstreams_are_cut_short() {
    let huge = 64 * 1024 * 1024;
    for announced in [true, false] {
        let mut head =
            String::from("HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n");
        if announced {
            head.push_str(&format!("content-length: {huge}\r\n\r\n"));
        } else {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
        }
        let mut reply = head.into_bytes();
        if announced {
            reply.resize(reply.len() + huge, b' ');
        } else {
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..64 {
                reply.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                reply.extend_from_slice(&chunk);
                reply.extend_from_slice(b"\r\n");
            }
            reply.extend_from_slice(b"0\r\n\r\n");
        }
        let up = upstream(Some(reply)).await;
        let proxy = start(&up, checks(None)).await.unwrap();
        let (status, body) = call(&proxy.url, b"{}".to_vec()).await;
        assert_eq!(status, 502, "announced: {announced}");
        assert_eq!(
            body["__type"],
            "com.amazonaws.dynamodb.v20120810#InternalServerError"
        );
    }
    let silent = upstream(None).await;
    let proxy = start(&silent, checks(Some(std::time::Duration::from_millis(300))))
        .await
        .unwrap();
    let (status, _) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        call(&proxy.url, b"{}".to_vec()),
    )
    .await
    .expect("the proxy answers once the upstream timeout has passed");
    assert_eq!(status, 502);
}
