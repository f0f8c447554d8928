//! The emulator as a local Lambda: the Invoke API through the real
//! aws-sdk-lambda client, and template functions of other runtimes run as
//! processes behind the Runtime API (a custom runtime, and Python through
//! PyPI's awslambdaric), reached by WebSocket routes and by Invoke.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::emulator::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_custom_route_runs_a_custom_runtime_with_api_gateways_event() {
    let emu = lambdas(|c| c).await;
    let mut ws = connect(&emu.urls.websocket).await;
    send(&mut ws, json!({"action": "echo", "n": 1})).await;
    let reply = recv(&mut ws).await;
    let event = &reply["event"];
    let ctx = &event["requestContext"];
    assert_eq!(ctx["routeKey"], "echo");
    assert_eq!(ctx["eventType"], "MESSAGE");
    assert_eq!(ctx["stage"], "test");
    assert!(ctx["connectionId"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(ctx["requestId"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(event["body"], json!({"action": "echo", "n": 1}).to_string());
    assert_eq!(event["isBase64Encoded"], false);
    // Every field DESIGN.md §2 lists for a MESSAGE event.
    for key in ["connectedAt", "requestTimeEpoch"] {
        assert!(
            ctx[key].as_i64().is_some_and(|t| t > 1_700_000_000_000),
            "{key}: {ctx}"
        );
    }
    for key in [
        "requestTime",
        "extendedRequestId",
        "messageId",
        "domainName",
        "apiId",
    ] {
        assert!(
            ctx[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {ctx}"
        );
    }
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert!(ctx["identity"]["userAgent"].is_string(), "{ctx}");
    // Nothing invented: every requestContext field is one AWS's sample
    // WebSocket event (aws_lambda_events' fixture) has too.
    let sample: Value = serde_json::from_str(include_str!(
        "../fixtures/aws-events/example-apigw-websocket-request.json"
    ))
    .unwrap();
    for (key, value) in ctx.as_object().unwrap() {
        assert!(
            sample["requestContext"].get(key).is_some(),
            "requestContext.{key} is not in AWS's sample"
        );
        if key == "identity" {
            for k in value.as_object().unwrap().keys() {
                assert!(
                    sample["requestContext"]["identity"].get(k).is_some(),
                    "identity.{k} is not in AWS's sample"
                );
            }
        }
    }
    // It is one of AWS's event shapes: aws_lambda_events reads it.
    let typed: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event.clone()).unwrap();
    assert_eq!(typed.request_context.route_key.as_deref(), Some("echo"));
    assert_eq!(reply["env"]["AWS_LAMBDA_FUNCTION_NAME"], "custom-echo");
    assert_eq!(reply["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "192");
    assert_eq!(reply["env"]["_HANDLER"], "bootstrap");
    assert_eq!(
        reply["headers"]["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:custom-echo"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_python_function_on_a_route_gets_its_event_and_context() {
    let emu = lambdas(|c| c).await;
    let mut ws = connect(&emu.urls.websocket).await;
    send(&mut ws, json!({"action": "vote", "choice": "b"})).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["runtime"], "python");
    assert_eq!(reply["event"]["requestContext"]["routeKey"], "vote");
    assert_eq!(reply["function_name"], "VoteFunction");
    assert_eq!(reply["memory_limit_in_mb"], "128");
    assert_eq!(reply["handler_env"], "app.handler");
    assert!(
        reply["task_root"]
            .as_str()
            .unwrap()
            .ends_with("tests/fixtures/lambda/python")
    );
    let remaining = reply["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 5_000, "{remaining}");
    emu.shutdown().await;
}

/// Node functions run on the emulator's own Node runtime (npm's
/// aws-lambda-ric needs cmake to build, which these machines lack).
#[tokio::test]
async fn a_node_function_on_a_route_and_by_invoke() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node functions need `node` (18 or later) on PATH: Debian `apt install nodejs`, or https://nodejs.org"
    );
    let emu = lambdas(|c| c).await;
    let mut ws = connect(&emu.urls.websocket).await;
    send(&mut ws, json!({"action": "tally", "x": 1})).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["runtime"], "node");
    assert_eq!(reply["event"]["requestContext"]["routeKey"], "tally");
    assert_eq!(reply["functionName"], "TallyFunction");
    assert_eq!(reply["memoryLimitInMB"], "256");
    assert_eq!(reply["handlerEnv"], "index.handler");
    let remaining = reply["remainingMs"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 5_000, "{remaining}");
    let lambda = lambda_client(&emu).await;
    let out = lambda
        .invoke()
        .function_name("TallyFunction")
        .payload(payload(&json!({"n": 2})))
        .client_context("eyJjdXN0b20iOnsiYSI6ImIifX0=")
        .send()
        .await
        .unwrap();
    let v = parse(&out);
    assert_eq!(v["event"], json!({"n": 2}));
    assert_eq!(v["clientContext"]["custom"], json!({"a": "b"}));
    let out = invoke(&lambda, "TallyFunction", &json!({"fail": true})).await;
    assert_eq!(out.function_error(), Some("Unhandled"));
    assert_eq!(parse(&out)["errorType"], "TypeError");
    assert_eq!(parse(&out)["errorMessage"], "asked to fail");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_sdk_invokes_by_name_arn_and_logical_id_with_client_context() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    for name in [
        "VoteFunction",
        "arn:aws:lambda:us-east-1:000000000000:function:VoteFunction",
        "VoteFunction:$LATEST",
    ] {
        let out = lambda
            .invoke()
            .function_name(name)
            .payload(payload(&json!({"n": 7})))
            .client_context("eyJjdXN0b20iOnsiYSI6ImIifX0=") // {"custom":{"a":"b"}}
            .send()
            .await
            .unwrap();
        assert_eq!(out.status_code(), 200, "{name}");
        assert_eq!(out.executed_version(), Some("$LATEST"));
        let v = parse(&out);
        assert_eq!(v["event"], json!({"n": 7}), "{name}");
        assert_eq!(v["client_context"], json!({"a": "b"}), "{name}");
    }
    let out = invoke(&lambda, "custom-echo", &json!({"fixture": "echo"})).await;
    assert_eq!(
        parse(&out)["env"]["AWS_LAMBDA_FUNCTION_NAME"],
        "custom-echo"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn function_errors_come_back_as_lambda_reports_them() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let out = invoke(&lambda, "VoteFunction", &json!({"fail": true})).await;
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), Some("Unhandled"));
    let v = parse(&out);
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["errorMessage"], "asked to fail");
    // A timeout: Lambda's message, and a fresh instance afterwards.
    let out = invoke(
        &lambda,
        "CustomFunction",
        &json!({"fixture": "sleep", "secs": 10}),
    )
    .await;
    assert_eq!(out.function_error(), Some("Unhandled"));
    assert_eq!(
        parse(&out)["errorMessage"],
        "Task timed out after 2.00 seconds"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_lambdas_errors() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let missing = lambda
        .invoke()
        .function_name("NoSuchFunction")
        .send()
        .await
        .unwrap_err();
    let e = missing.into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let qualified = lambda
        .invoke()
        .function_name("VoteFunction")
        .qualifier("7")
        .send()
        .await
        .unwrap_err();
    assert!(
        qualified
            .into_service_error()
            .is_resource_not_found_exception()
    );
    let junk = lambda
        .invoke()
        .function_name("VoteFunction")
        .payload(Blob::new(b"{not json".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert!(
        junk.into_service_error()
            .is_invalid_request_content_exception()
    );
    let big = Blob::new(format!("\"{}\"", "x".repeat(300 * 1024)).into_bytes());
    let too_big = lambda
        .invoke()
        .function_name("VoteFunction")
        .invocation_type(InvocationType::Event)
        .payload(big)
        .send()
        .await
        .unwrap_err();
    assert!(
        too_big
            .into_service_error()
            .is_request_too_large_exception()
    );
    let huge = Blob::new(format!("\"{}\"", "x".repeat(6 * 1024 * 1024 + 1)).into_bytes());
    let sync_too_big = lambda
        .invoke()
        .function_name("VoteFunction")
        .payload(huge)
        .send()
        .await
        .unwrap_err();
    assert!(
        sync_too_big
            .into_service_error()
            .is_request_too_large_exception()
    );
    let dry = lambda
        .invoke()
        .function_name("VoteFunction")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status_code(), 204);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_event_invocation_is_accepted_then_retried_twice_on_error() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let file = std::env::temp_dir().join(format!("roomcast-async-{}", uuid::Uuid::new_v4()));
    let out = invoke_event(
        &lambda,
        "CustomFunction",
        &json!({"fixture": "record-error", "file": file}),
    )
    .await;
    assert_eq!(out.status_code(), 202);
    let attempts = || {
        std::fs::read_to_string(&file)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once, then two retries (100 ms and 200 ms later here), and no more.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(attempts(), 3);
    let _ = std::fs::remove_file(&file);
    emu.shutdown().await;
}

#[tokio::test]
async fn simultaneous_invocations_start_at_most_the_reserved_concurrency() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let lambda = lambda.clone();
            tokio::spawn(async move {
                let out = invoke(
                    &lambda,
                    "CustomFunction",
                    &json!({"fixture": "sleep", "secs": 0.3}),
                )
                .await;
                parse(&out)["pid"].as_i64().unwrap()
            })
        })
        .collect();
    let mut pids = HashSet::new();
    for c in calls {
        pids.insert(c.await.unwrap());
    }
    // ReservedConcurrentExecutions: 2 in the template.
    assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
    let metrics = metrics(&emu).await;
    assert!(
        metrics.contains(
            "roomcast_function_invocation_duration_seconds_count{function=\"CustomFunction\"} 6"
        ),
        "{metrics}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_backend_publishes_through_the_sdk_to_connected_clients() {
    let emu = start(config("template.yaml")).await;
    let token = dev_token(&emu, "alice").await;
    let mut ws = connect(&format!("{}?token={token}", emu.urls.websocket)).await;
    send(&mut ws, json!({"action": "join", "room": "news", "ref": 1})).await;
    recv_type(&mut ws, "joined").await;
    let lambda = lambda_client(&emu).await;
    let out = lambda
        .invoke()
        .function_name("PublishFunction")
        .payload(payload(
            &json!({"room": "news", "data": {"headline": "hi"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.function_error(), None, "{:?}", parse(&out));
    let report = parse(&out);
    assert_eq!(report["delivered"], 1, "{report}");
    let msg = recv_type(&mut ws, "message").await;
    assert_eq!(msg["data"], json!({"headline": "hi"}));
    assert_eq!(msg["from"]["user"], "server");
    emu.shutdown().await;
}

/// `--watch`: a code change reaches new invocations; one running during the
/// change finishes on the old code; open connections stay open.
#[tokio::test]
async fn hot_reload_serves_new_code_without_dropping_connections() {
    let dir =
        std::env::temp_dir().join(format!("roomcast-watch-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("fn")).unwrap();
    let app = |version: &str| {
        format!(
            "import json, time\nVERSION = {version:?}\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0) if isinstance(event, dict) and 'requestContext' not in event else 0)\n    seen = {{'version': VERSION}}\n    if isinstance(event, dict) and 'requestContext' in event:\n        return {{'statusCode': 200, 'body': json.dumps(seen)}}\n    return seen\n"
        )
    };
    std::fs::write(dir.join("fn/app.py"), app("v1")).unwrap();
    std::fs::write(
        dir.join("template.yaml"),
        std::fs::read_to_string(repo_path("tests/fixtures/lambda/template.yaml"))
            .unwrap()
            .replace("CodeUri: python/", "CodeUri: fn/")
            .replace(
                "CodeUri: node/",
                &format!(
                    "CodeUri: {}",
                    repo_path("tests/fixtures/lambda/node").display()
                ),
            )
            .replace(
                "CodeUri: .\n",
                &format!(
                    "CodeUri: {}\n",
                    repo_path("tests/fixtures/lambda").display()
                ),
            ),
    )
    .unwrap();
    let emu = start(
        config("template.yaml")
            .template(dir.join("template.yaml"))
            .python(python())
            .watch(true),
    )
    .await;
    let lambda = lambda_client(&emu).await;
    let version = |event: Value| {
        let lambda = lambda.clone();
        async move {
            let out = invoke(&lambda, "VoteFunction", &event).await;
            parse(&out)["version"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let mut ws = connect(&emu.urls.websocket).await;
    send(&mut ws, json!({"action": "vote"})).await;
    assert_eq!(recv(&mut ws).await["version"], "v1");
    assert_eq!(version(json!({})).await, "v1");
    // Running while the code changes: it finishes on the old code.
    let running = tokio::spawn(version(json!({"sleep": 1.5})));
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(dir.join("fn/app.py"), app("v2")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut now = String::new();
    while std::time::Instant::now() < deadline {
        now = version(json!({})).await;
        if now == "v2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(now, "v2", "the new code is served");
    assert_eq!(
        running.await.unwrap(),
        "v1",
        "the running invocation kept the old code"
    );
    // The connection opened before the reload still works.
    send(&mut ws, json!({"action": "vote"})).await;
    assert_eq!(recv(&mut ws).await["version"], "v2");
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The emulator's own log says what failed, with the function, the route,
/// the connection and API Gateway's request id: a function that failed, and
/// one that caught its failure and answered `statusCode: 500` (which API
/// Gateway passes on to nobody). Read from `roomcast dev`'s stderr, as a
/// developer reads it.
#[tokio::test]
async fn failures_and_error_statuses_are_logged_with_function_route_and_connection() {
    let mut dev = DevProcess::start(&[
        "--template".into(),
        repo_path("tests/fixtures/lambda/template.yaml").into(),
        "--static-dir".into(),
        repo_path("tests/fixtures").into(),
        // Its python3.12 function needs awslambdaric, checked at start-up.
        "--python".into(),
        python().into(),
    ]);
    let port = dev.port;
    let mut ws = connect(&format!("ws://127.0.0.1:{port}/test")).await;
    send(&mut ws, json!({"action": "echo", "fixture": "status-500"})).await;
    send(&mut ws, json!({"action": "echo", "fixture": "error"})).await;
    let mut wanted = vec![
        (
            "the route's function answered with an error status",
            "caught: db down",
        ),
        ("invocation failed", "Fixture.Error: boom"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !wanted.is_empty() {
        let line = tokio::time::timeout_at(deadline, dev.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no log line for {wanted:?}"))
            .expect("stderr open");
        wanted.retain(|(what, detail)| {
            let found = line.contains(what) && line.contains(detail);
            if found {
                for field in [
                    "CustomFunction",
                    "route=echo",
                    "connection_id=",
                    "request_id=",
                ] {
                    assert!(line.contains(field), "{field} missing from: {line}");
                }
            }
            !found
        });
    }
    drop(dev);
}

#[tokio::test]
async fn a_function_forced_cold_starts_cold_and_the_timeline_says_so() {
    let emu = lambdas(|c| c).await;
    let lambda = lambda_client(&emu).await;
    let mut stream = watch(&emu).await;
    let invoke = || {
        lambda
            .invoke()
            .function_name("custom-echo")
            .payload(payload(&json!({"fixture": "echo"})))
            .send()
    };
    invoke().await.unwrap();
    invoke().await.unwrap();
    let cold = |name: &str| {
        dev_api(
            &emu,
            reqwest::Method::POST,
            &format!("functions/{name}/cold"),
        )
        .send()
    };
    let r = cold("CustomFunction").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let stopped: Value = r.json().await.unwrap();
    assert_eq!(stopped["stopped"], 1, "the one warm instance");
    invoke().await.unwrap();
    // First cold, then warm, then cold again after the forcing.
    let colds = from_timeline(&mut stream, |seen| {
        let runs: Vec<bool> = seen
            .iter()
            .filter(|e| e["kind"] == "invoke" && e["function"] == "CustomFunction")
            .map(|e| e["cold"].as_bool().unwrap())
            .collect();
        (runs.len() == 3).then_some(runs)
    })
    .await;
    assert_eq!(colds, vec![true, false, true]);
    assert_eq!(cold("Nope").await.unwrap().status().as_u16(), 404);
    drop(stream);
    emu.shutdown().await;
    // A function in the emulator's process has no instances to stop.
    let roomcast = start(config("template.yaml")).await;
    let in_process = "functions/PublishFunction/cold";
    assert_eq!(
        dev_api_status(&roomcast, reqwest::Method::POST, in_process).await,
        400
    );
    roomcast.shutdown().await;
}
