//! The lean PostToConnection client beside the SDK's, on the same
//! requests: a server on 127.0.0.1 answers each with a scripted status and
//! `x-amzn-ErrorType`, as API Gateway's Management API does (API Gateway
//! Developer Guide, "Use @connections commands in your backend service":
//! 410 `GoneException` for a connection that is gone; the API reference
//! for PostToConnection lists `ForbiddenException` 403,
//! `LimitExceededException` 429 and `PayloadTooLargeException` 413). Both
//! must type every answer the same and retry the same answers as often.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use roomcast_aws::gateway::{Gateway, GatewayError};
use roomcast_aws::management::ManagementApi;
use tokio::net::TcpListener;

/// A request as the server saw it: path, `Authorization`, body.
type Seen = (String, String, Vec<u8>);
/// A scripted answer: status and `x-amzn-ErrorType` (empty: none).
type Answer = (u16, &'static str);

/// Answers from a script, one per request, repeating the last; records
/// what it was sent.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn script(&self, answers: &[Answer]) {
        *self.answers.lock().unwrap() = answers.iter().copied().collect();
        self.seen.lock().unwrap().clear();
    }

    fn next(&self) -> Answer {
        let mut a = self.answers.lock().unwrap();
        if a.len() > 1 {
            a.pop_front().unwrap()
        } else {
            *a.front().unwrap()
        }
    }
}

async fn serve(script: Scripted) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let script = script.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                        script.seen.lock().unwrap().push((path, auth, body));
                        let (status, error_type) = script.next();
                        let mut response = Response::builder().status(status);
                        if !error_type.is_empty() {
                            response = response.header("x-amzn-ErrorType", error_type);
                        }
                        Ok::<_, Infallible>(
                            response
                                .body(Full::new(Bytes::from_static(br#"{"message":"scripted"}"#)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/prod")
}

/// The two clients, with the same SDK settings (short backoffs).
async fn clients(endpoint: &str) -> [(&'static str, Arc<dyn Gateway>); 2] {
    let sdk = common::sdk()
        .await
        .into_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build();
    let sdk_api = ManagementApi::new(sdk.clone(), Some(endpoint.to_owned())).sdk_posts(true);
    let lean_api = ManagementApi::new(sdk, Some(endpoint.to_owned()));
    [
        ("sdk", sdk_api.gateway(endpoint) as Arc<dyn Gateway>),
        ("lean", lean_api.gateway(endpoint) as Arc<dyn Gateway>),
    ]
}

fn kind(r: &Result<(), GatewayError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(GatewayError::Forbidden(_)) => "forbidden".into(),
        Err(GatewayError::Unavailable(_)) => "unavailable".into(),
        Err(e) => format!("{e}"),
    }
}

#[tokio::test]
async fn both_clients_type_and_retry_every_answer_the_same() {
    let script = Scripted::default();
    let endpoint = serve(script.clone()).await;
    let cases: [(&[Answer], &str, usize); 8] = [
        (&[(200, "")], "ok", 1),
        (&[(410, "GoneException")], "connection is gone", 1),
        (&[(413, "PayloadTooLargeException")], "payload too large", 1),
        (&[(403, "ForbiddenException")], "forbidden", 1),
        (&[(429, "LimitExceededException")], "throttled", 3),
        (&[(500, "InternalServerErrorException")], "unavailable", 3),
        (&[(429, "LimitExceededException"), (200, "")], "ok", 2),
        (&[(503, ""), (503, ""), (200, "")], "ok", 3),
    ];
    for (answers, expected, requests) in cases {
        for (name, client) in clients(&endpoint).await {
            script.script(answers);
            let outcome = client.post("L0SM9cOFvHcCIhw=", b"{\"hello\":1}").await;
            assert_eq!(kind(&outcome), expected, "{name} on {answers:?}");
            let seen = script.seen.lock().unwrap().clone();
            assert_eq!(seen.len(), requests, "{name} on {answers:?}: attempts");
            for (path, auth, body) in &seen {
                // The SDK encodes the connection id's `=`; so does the lean client.
                assert_eq!(path, "/prod/@connections/L0SM9cOFvHcCIhw%3D", "{name}");
                assert!(
                    auth.starts_with("AWS4-HMAC-SHA256 Credential="),
                    "{name}: {auth}"
                );
                assert!(
                    auth.contains("/us-east-1/execute-api/aws4_request"),
                    "{name}: {auth}"
                );
                assert_eq!(body, b"{\"hello\":1}", "{name}");
            }
        }
    }
}

#[tokio::test]
async fn a_post_that_never_answers_is_bounded_by_the_caller_for_both() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    let endpoint = format!("http://{addr}/prod");
    let config = roomcast_aws::config::FanoutConfig {
        call_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    for (name, client) in clients(&endpoint).await {
        let posted = roomcast_aws::gateway::post_until(
            &*client,
            vec!["abc".to_owned()],
            b"x",
            &config,
            None,
            None,
        )
        .await;
        assert_eq!(
            posted.retry,
            vec!["abc".to_owned()],
            "{name}: a timeout is worth another attempt"
        );
        assert_eq!(posted.delivered, 0, "{name}");
    }
}
