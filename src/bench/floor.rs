//! `roomcast bench --scenarios sdk-floor`: the cost of one PostToConnection
//! through the production adapter, with no emulator behind it.
//!
//! A do-nothing HTTP server answers 200 to every request, and the real
//! `ManagementApi` adapter posts to it through `fan_out` with the production
//! settings. Beside it, the same requests through a plain HTTP client. The
//! two rates bound what the default (SDK) path of the emulator can ever
//! deliver on this machine, whatever the emulator itself does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use roomcast_aws::config::FanoutConfig;
use roomcast_aws::gateway::fan_out;
use roomcast_aws::management::ManagementApi;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Fan-outs run at once: the emulator's default per-function concurrency.
const CONCURRENT_FANOUTS: usize = 16;
/// Recipients per fan-out, as in the fan-out-to-1,000 target.
const RECIPIENTS: usize = 1000;
/// A broadcast frame of the bench's size.
const PAYLOAD: &[u8] = br#"{"type":"message","room":"bench-0","seq":123456,"id":"b0-123456","from":{"user":"bench-0","name":"bench 0"},"data":{"t":1795000000000000,"n":123456,"s":0,"r":0},"ts":1795000000000}"#;

/// Serves 200 with an empty body to every request, after reading it.
async fn null_server() -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/prod"))
}

fn ids(fanout: usize) -> Vec<String> {
    (0..RECIPIENTS)
        .map(|i| format!("F{fanout:04}R{i:04}xxxxxx="))
        .collect()
}

fn result(client: &str, calls: usize, failed: usize, started: Instant) -> Value {
    let secs = started.elapsed().as_secs_f64();
    json!({
        "scenario": "sdk-floor", "client": client, "calls": calls, "failed": failed,
        "calls_per_s": calls as f64 / secs,
        "us_per_call": secs * 1e6 / calls as f64,
        "concurrent_fanouts": CONCURRENT_FANOUTS, "recipients": RECIPIENTS,
    })
}

/// `fanouts` fan-outs of 1,000 through the production adapter.
async fn through_sdk(endpoint: &str, fanouts: usize) -> Value {
    let sdk = roomcast_emulator::local_sdk_config().await;
    let api = ManagementApi::new(sdk, Some(endpoint.to_owned()));
    let gateway = api.gateway(endpoint);
    let config = FanoutConfig::default();
    let started = Instant::now();
    let reports: Vec<_> = futures::stream::iter(0..fanouts)
        .map(|f| {
            let gateway = gateway.clone();
            async move { fan_out(&*gateway, ids(f), PAYLOAD, &config).await }
        })
        .buffer_unordered(CONCURRENT_FANOUTS)
        .collect()
        .await;
    let failed = reports.iter().map(|r| r.failed + r.gone.len()).sum();
    result(
        "aws-sdk-apigatewaymanagement",
        fanouts * RECIPIENTS,
        failed,
        started,
    )
}

/// The same requests through a plain HTTP client: no signing, no SDK
/// pipeline; what loopback HTTP/1.1 alone costs.
async fn through_plain_http(endpoint: &str, fanouts: usize) -> Value {
    let http = reqwest::Client::new();
    let in_flight = CONCURRENT_FANOUTS * FanoutConfig::default().concurrency;
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    futures::stream::iter((0..fanouts).flat_map(ids))
        .map(|id| {
            let (http, failed) = (http.clone(), failed.clone());
            let url = format!("{endpoint}/@connections/{id}");
            async move {
                let ok = http
                    .post(url)
                    .body(PAYLOAD)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(in_flight)
        .collect::<()>()
        .await;
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    result("plain-http", fanouts * RECIPIENTS, failed, started)
}

/// Both clients against one null server, each after a warm-up fan-out.
pub(crate) async fn run(fanouts: usize) -> Result<Vec<Value>, String> {
    let endpoint = null_server().await?;
    through_sdk(&endpoint, 1).await;
    let sdk = through_sdk(&endpoint, fanouts).await;
    through_plain_http(&endpoint, 1).await;
    let plain = through_plain_http(&endpoint, fanouts).await;
    Ok(vec![sdk, plain])
}
