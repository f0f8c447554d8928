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
use roomcast_aws::management::{ManagementApi, ManagementGateway};
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

/// `fanouts` fan-outs of 1,000 through the production adapter, posting
/// through the SDK (`sdk_posts`) or through the lean client (the default).
async fn through_adapter(endpoint: &str, fanouts: usize, sdk_posts: bool) -> Value {
    let sdk = roomcast_emulator::local_sdk_config().await;
    let api = ManagementApi::new(sdk, Some(endpoint.to_owned())).sdk_posts(sdk_posts);
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
    let client = if sdk_posts {
        "aws-sdk-apigatewaymanagement"
    } else {
        "lean (aws-sigv4 + own HTTP/1.1)"
    };
    result(client, fanouts * RECIPIENTS, failed, started)
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

/// The three clients against one null server, each after a warm-up
/// fan-out.
pub(crate) async fn run(fanouts: usize) -> Result<Vec<Value>, String> {
    let endpoint = null_server().await?;
    through_adapter(&endpoint, 1, true).await;
    let sdk = through_adapter(&endpoint, fanouts, true).await;
    through_adapter(&endpoint, 1, false).await;
    let lean = through_adapter(&endpoint, fanouts, false).await;
    through_plain_http(&endpoint, 1).await;
    let plain = through_plain_http(&endpoint, fanouts).await;
    Ok(vec![sdk, lean, plain])
}

/// Recipients of one paced fan-out: the broadcast scenario's room.
const PACED_RECIPIENTS: usize = 100;
/// Fan-outs measured per pace and client, after two unmeasured ones.
const PACED_ROUNDS: usize = 40;

/// How a paced fan-out posts.
#[derive(Clone, Copy)]
enum Client {
    /// The production adapter, one `fan_out` (one task).
    Sdk,
    /// The production adapter, the recipients split over two tasks, so the
    /// client side of one fan-out can use both cores.
    SdkSplit,
    /// The production adapter's default: the lean PostToConnection client.
    Lean,
    /// reqwest, no SDK pipeline.
    Plain,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Sdk => "aws-sdk-apigatewaymanagement",
            Client::SdkSplit => "aws-sdk-apigatewaymanagement, two tasks",
            Client::Lean => "lean (aws-sigv4 + own HTTP/1.1)",
            Client::Plain => "plain-http",
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Posts `ids` once each through `client`.
async fn post_all(
    client: Client,
    gateway: &Arc<ManagementGateway>,
    lean: &Arc<ManagementGateway>,
    http: &reqwest::Client,
    endpoint: &str,
    ids: &[String],
) {
    let config = FanoutConfig::default();
    match client {
        Client::Sdk => {
            fan_out(&**gateway, ids.to_vec(), PAYLOAD, &config).await;
        }
        Client::Lean => {
            fan_out(&**lean, ids.to_vec(), PAYLOAD, &config).await;
        }
        Client::SdkSplit => {
            let (a, b) = ids.split_at(ids.len() / 2);
            let (other, b, cfg) = (gateway.clone(), b.to_vec(), config);
            let half = tokio::spawn(async move { fan_out(&*other, b, PAYLOAD, &cfg).await });
            fan_out(&**gateway, a.to_vec(), PAYLOAD, &config).await;
            let _ = half.await;
        }
        Client::Plain => {
            futures::stream::iter(ids)
                .map(|id| {
                    let req = http
                        .post(format!("{endpoint}/@connections/{id}"))
                        .body(PAYLOAD);
                    async move { req.send().await.is_ok() }
                })
                .buffer_unordered(config.concurrency)
                .collect::<Vec<_>>()
                .await;
        }
    }
}

/// One fan-out of 100 every `gap` per client: if idle time brought back a
/// cost (a cold pool, per-call setup), the slow pace would cost more than
/// the fast one on the SDK and not on plain HTTP.
async fn paced(endpoint: &str, gap: std::time::Duration) -> Vec<Value> {
    let sdk = roomcast_emulator::local_sdk_config().await;
    let api = ManagementApi::new(sdk.clone(), Some(endpoint.to_owned())).sdk_posts(true);
    let gateway = api.gateway(endpoint);
    let lean_api = ManagementApi::new(sdk, Some(endpoint.to_owned()));
    let lean = lean_api.gateway(endpoint);
    let http = reqwest::Client::new();
    let ids: Vec<String> = ids(0).into_iter().take(PACED_RECIPIENTS).collect();
    let mut out = Vec::new();
    for client in [Client::Sdk, Client::SdkSplit, Client::Lean, Client::Plain] {
        let mut times = Vec::new();
        let mut tick = tokio::time::interval(gap);
        for round in 0..PACED_ROUNDS + 2 {
            tick.tick().await;
            let started = Instant::now();
            post_all(client, &gateway, &lean, &http, endpoint, &ids).await;
            if round >= 2 {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        out.push(json!({
            "scenario": "sdk-paced", "client": client.name(), "gap_ms": gap.as_millis() as u64,
            "recipients": PACED_RECIPIENTS, "rounds": PACED_ROUNDS,
            "fanout_p50_ms": quantile(&times, 0.5), "fanout_p90_ms": quantile(&times, 0.9),
            "fanout_max_ms": quantile(&times, 1.0),
        }));
    }
    out
}

/// Paced fan-outs at 2 and 50 per second, alternating twice, against one
/// null server.
pub(crate) async fn run_paced() -> Result<Vec<Value>, String> {
    let endpoint = null_server().await?;
    let mut out = Vec::new();
    for gap_ms in [500, 20, 500, 20] {
        out.extend(paced(&endpoint, std::time::Duration::from_millis(gap_ms)).await);
    }
    Ok(out)
}
