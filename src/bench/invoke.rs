//! `roomcast bench --scenarios lambda`: what running a function as a process
//! behind the Runtime API costs per invocation, against the in-process call,
//! side by side in one run. Both emulators serve the same template; the
//! authorizer is invoked through the Lambda Invoke API with a valid token,
//! so both do the same work (verify a JWT, build a policy) and touch no store.

use std::time::Instant;

use serde_json::{Value, json};

use super::{dev_tokens, spawn};
use crate::bench::load::summarize;

/// Invocations before measuring (warm instances, warm connections).
const WARM_UP: usize = 20;
/// Concurrent callers for the throughput run.
const CALLERS: usize = 8;

pub(crate) async fn run(n: usize) -> Result<Vec<Value>, String> {
    let in_process = spawn(&["dev", "--port", "0"], &[])?;
    // A DynamoDB endpoint is required in process mode; nothing calls it here.
    let process = spawn(
        &[
            "dev",
            "--port",
            "0",
            "--functions",
            "process",
            "--dynamodb-endpoint",
            "http://127.0.0.1:9",
            "--cargo-profile",
            "release",
        ],
        &[],
    )?;
    let http = reqwest::Client::new();
    let event = authorizer_event(&dev_tokens()(0));
    let mut results = Vec::new();
    let mut p50 = Vec::new();
    for (name, port) in [("in-process", in_process.port), ("process", process.port)] {
        let url =
            format!("http://127.0.0.1:{port}/2015-03-31/functions/AuthorizerFunction/invocations");
        for _ in 0..WARM_UP {
            invoke(&http, &url, &event).await?;
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            invoke(&http, &url, &event).await?;
            samples.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        let s = summarize(&mut samples);
        p50.push(s.p50_ms * 1000.0);
        let per_s = throughput(&http, &url, &event, n).await?;
        results.push(json!({
            "scenario": "lambda", "target": name, "invocations": n,
            "p50_us": s.p50_ms * 1000.0, "p99_us": s.p99_ms * 1000.0, "max_us": s.max_ms * 1000.0,
            "concurrent_callers": CALLERS, "invocations_per_s": per_s,
        }));
    }
    let init = init_ms(&http, process.port).await?;
    results.push(json!({
        "scenario": "lambda", "target": "overhead",
        "process_minus_in_process_p50_us": p50[1] - p50[0],
        "process_over_in_process_p50": p50[1] / p50[0],
        "process_init_ms_mean": init,
    }));
    Ok(results)
}

fn authorizer_event(token: &str) -> Value {
    json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:000000000000:local/prod/$connect",
        "headers": {"Host": "127.0.0.1"},
        "queryStringParameters": {"token": token},
        "requestContext": {
            "routeKey": "$connect", "eventType": "CONNECT", "connectionId": "bench",
            "requestId": "bench", "apiId": "local", "stage": "prod"
        }
    })
}

async fn invoke(http: &reqwest::Client, url: &str, event: &Value) -> Result<(), String> {
    let r = http
        .post(url)
        .json(event)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let failed = r.headers().contains_key("x-amz-function-error");
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if failed || body.get("principalId").is_none() {
        return Err(format!("the authorizer did not allow: {body}"));
    }
    Ok(())
}

async fn throughput(
    http: &reqwest::Client,
    url: &str,
    event: &Value,
    n: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (http, url, event) = (http.clone(), url.to_owned(), event.clone());
        callers.spawn(async move {
            for _ in 0..n / CALLERS {
                invoke(&http, &url, &event).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = callers.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok((n / CALLERS * CALLERS) as f64 / started.elapsed().as_secs_f64())
}

/// Mean init duration (spawn to first `/next`) of the process emulator's
/// instances, from its `/metrics`.
async fn init_ms(http: &reqwest::Client, port: u16) -> Result<f64, String> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("function=\"AuthorizerFunction\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (
        value("roomcast_function_init_duration_seconds_sum"),
        value("roomcast_function_init_duration_seconds_count"),
    ) {
        (Some(sum), Some(count)) if count > 0.0 => Ok(sum / count * 1000.0),
        _ => Err("no init duration in /metrics".into()),
    }
}
