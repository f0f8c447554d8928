//! Process functions against a real custom runtime: `tests/fixtures/lambda/
//! bootstrap`, a Python (standard library only) program that speaks the
//! Runtime API and misbehaves on request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::LaunchError;
use super::environment::{self, Shared};
use super::launch::{self, Toolchain};
use super::pool::{InvokeContext, ProcessFunction};
use crate::lambda::registry::InvokeError;
use crate::metrics::Metrics;
use crate::template::FunctionSpec;

/// Every wait here is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/lambda"
    ))
}

fn require_python() {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests run a Python custom runtime: install python3 (Debian: apt install python3)"
    );
}

fn spec(mode: &str, timeout_secs: u64) -> FunctionSpec {
    FunctionSpec {
        logical_id: "FixtureFunction".into(),
        binary: String::new(),
        function_name: "fixture".into(),
        runtime: "provided.al2023".into(),
        handler: "fixture.handler".into(),
        code_uri: fixtures().display().to_string(),
        memory_mb: 192,
        reserved_concurrency: None,
        environment: BTreeMap::from([("FIXTURE_MODE".into(), mode.into())]),
        timeout_secs,
        architecture: "x86_64".into(),
        log_group: "/aws/lambda/fixture".into(),
    }
}

fn tools() -> Toolchain {
    Toolchain {
        project: fixtures(),
        target_dir: fixtures().join("no-target"),
        rebuild: false,
        profile: "debug".into(),
        python: "python3".into(),
        cache: std::env::temp_dir().join("roomcast-test-cache"),
        callback: None,
    }
}

async fn function(mode: &str, timeout_secs: u64) -> (Arc<ProcessFunction>, Arc<Metrics>) {
    require_python();
    let spec = spec(mode, timeout_secs);
    let launch = match launch::resolve(&spec, &tools()).await {
        Ok(l) => l,
        Err(e) => panic!("the fixture runtime: {e}"),
    };
    let shared = Shared {
        region: "eu-west-1".into(),
        emulator_url: "http://127.0.0.1:9".into(),
        dynamodb_endpoint: None,
        trust: None,
        injected: BTreeMap::new(),
        iam: None,
        plugged: Default::default(),
    };
    let env = environment::for_function(&spec, &launch.task_root, &shared, &|k: &str| {
        std::env::var(k).ok()
    });
    let metrics = Arc::new(Metrics::default());
    let f = ProcessFunction::new(
        &spec.logical_id,
        launch,
        env,
        environment::function_arn("eu-west-1", "fixture"),
        Duration::from_secs(timeout_secs),
        metrics.clone(),
    );
    (Arc::new(f), metrics)
}

async fn call(f: &Arc<ProcessFunction>, event: Value) -> Result<Value, InvokeError> {
    call_with(f, event, InvokeContext::default()).await
}

async fn call_with(
    f: &Arc<ProcessFunction>,
    event: Value,
    context: InvokeContext,
) -> Result<Value, InvokeError> {
    let body = Bytes::from(event.to_string());
    match tokio::time::timeout(BOUND, f.call(body, context)).await {
        Ok(r) => r.map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null)),
        Err(_) => panic!("no answer within {BOUND:?}"),
    }
}

#[tokio::test]
async fn an_invocation_carries_lambdas_headers_and_reserved_environment() {
    let (f, metrics) = function("serve", 7).await;
    let context = InvokeContext {
        client_context: Some("eyJjdXN0b20iOnt9fQ==".into()),
        cognito_identity: None,
        crash_after: None,
    };
    let r = call_with(&f, json!({"hello": "world"}), context)
        .await
        .unwrap();
    assert_eq!(r["event"], json!({"hello": "world"}));
    let h = &r["headers"];
    let id = h["lambda-runtime-aws-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // The deadline is an epoch time: now plus the timeout, not a duration.
    let deadline: i64 = h["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = r["now_ms"].as_i64().unwrap();
    assert!(
        deadline > now + 5_000 && deadline <= now + 7_500,
        "{deadline} vs {now}"
    );
    assert_eq!(
        h["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:eu-west-1:000000000000:function:fixture"
    );
    assert!(
        h["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    assert_eq!(h["lambda-runtime-client-context"], "eyJjdXN0b20iOnt9fQ==");
    assert!(
        h.get("lambda-runtime-cognito-identity").is_none(),
        "only when given"
    );
    let env = &r["env"];
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "fixture"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "192"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "eu-west-1"),
        ("_HANDLER", "fixture.handler"),
        ("TZ", ":UTC"),
        ("FIXTURE_MODE", "serve"),
    ] {
        assert_eq!(env[k], v, "{k}");
    }
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(
        env.get("CARGO_MANIFEST_DIR").is_none(),
        "the emulator's environment does not leak"
    );
    let out = metrics.render(0);
    assert!(
        out.contains(
            "roomcast_function_init_duration_seconds_count{function=\"FixtureFunction\"} 1"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "roomcast_function_invocation_duration_seconds_count{function=\"FixtureFunction\"} 1"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn a_warm_instance_is_reused_and_a_handled_error_keeps_it() {
    let (f, _) = function("serve", 5).await;
    let first = call(&f, json!({})).await.unwrap()["pid"].clone();
    let err = call(&f, json!({"fixture": "error"})).await.unwrap_err();
    assert_eq!(err.error_type, "Fixture.Error");
    assert_eq!(err.error_message, "boom");
    let again = call(&f, json!({})).await.unwrap()["pid"].clone();
    assert_eq!(first, again, "the same warm process");
    assert_eq!(f.idle_count(), 1);
}

#[tokio::test]
async fn a_malformed_error_report_still_fails_the_invocation() {
    let (f, _) = function("serve", 5).await;
    let err = call(&f, json!({"fixture": "malformed-error"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "Fixture.Header", "the header's type");
    assert_eq!(err.error_message, "not json {");
    assert!(call(&f, json!({})).await.is_ok(), "the instance serves on");
}

#[tokio::test]
async fn a_crash_fails_its_invocation_and_the_next_one_starts_fresh() {
    let (f, _) = function("serve", 5).await;
    let before = call(&f, json!({})).await.unwrap()["pid"].clone();
    let err = call(&f, json!({"fixture": "crash"})).await.unwrap_err();
    assert_eq!(err.error_type, "Runtime.ExitError");
    assert!(
        err.error_message
            .contains("Runtime exited with error: exit status 7"),
        "{}",
        err.error_message
    );
    let after = call(&f, json!({})).await.unwrap()["pid"].clone();
    assert_ne!(before, after, "a new process");
}

#[tokio::test]
async fn answers_for_strangers_and_repeats_are_refused_without_harm() {
    let (f, _) = function("serve", 5).await;
    let r = call(&f, json!({"fixture": "strangers"})).await.unwrap();
    assert_eq!(r["unknown"], 400, "InvalidRequestID");
    let report = call(&f, json!({"fixture": "report"})).await.unwrap();
    assert_eq!(report["repeat"], 403, "an id answered twice");
    assert_eq!(report["late_init_error"], 403, "init is over");
    assert_eq!(r["pid"], call(&f, json!({})).await.unwrap()["pid"]);
}

#[tokio::test]
async fn a_response_over_6_mb_fails_the_invocation_with_lambdas_error() {
    let (f, _) = function("serve", 10).await;
    let err = call(&f, json!({"fixture": "too-big"})).await.unwrap_err();
    assert_eq!(err.error_type, "Function.ResponseSizeTooLarge");
    let report = call(&f, json!({"fixture": "report"})).await.unwrap();
    assert_eq!(report["too_big"], 413, "the runtime is told too");
}

#[tokio::test]
async fn megabytes_of_output_do_not_stall_the_function() {
    let (f, _) = function("serve", 10).await;
    let r = call(&f, json!({"fixture": "chatty"})).await.unwrap();
    assert_eq!(r["chatty"], true);
}

#[tokio::test]
async fn init_failures_fail_the_invocation_and_later_ones_retry_init() {
    let (f, _) = function("init-error", 5).await;
    for _ in 0..2 {
        let err = call(&f, json!({})).await.unwrap_err();
        assert_eq!(err.error_type, "Fixture.InitError");
        assert_eq!(err.error_message, "no config");
    }
    assert_eq!(f.idle_count(), 0, "a failed init leaves nothing warm");
    let (f, _) = function("exit-in-init", 5).await;
    let err = call(&f, json!({})).await.unwrap_err();
    assert_eq!(err.error_type, "Runtime.ExitError");
    assert!(
        err.error_message.contains("exit status 3"),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn a_timed_out_instance_is_killed_and_replaced() {
    let (f, _) = function("serve", 1).await;
    let before = call(&f, json!({})).await.unwrap()["pid"].clone();
    // The caller's timeout (Function::invoke's) drops the invocation.
    let slow = f.call(
        Bytes::from(json!({"fixture": "sleep", "secs": 30}).to_string()),
        InvokeContext::default(),
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), slow)
            .await
            .is_err()
    );
    let after = call(&f, json!({})).await.unwrap()["pid"].clone();
    assert_ne!(before, after, "a fresh instance after the timeout");
    // The old process is gone, not left running.
    let pid = before.as_i64().unwrap();
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(), "process {pid} was killed");
}

/// AWS, "Understanding the Lambda execution environment lifecycle": the
/// Init phase is limited to 10 seconds, apart from the invocation, whose
/// limit is the function's `Timeout`. A function whose init takes 3 s
/// answers its first call with `Timeout: 2`, and the invocation's
/// deadline counts from after init.
#[tokio::test]
async fn init_has_its_own_limit_and_does_not_count_against_the_timeout() {
    let (f, metrics) = function("slow-init", 2).await;
    let started = std::time::Instant::now();
    let first = call(&f, json!({}))
        .await
        .expect("init is not the invocation");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it did wait for init"
    );
    let deadline = first["headers"]["lambda-runtime-deadline-ms"]
        .as_str()
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap();
    let now_ms = first["now_ms"].as_i64().unwrap();
    assert!(
        deadline - now_ms > 1_000,
        "the deadline counts from the invocation, not from the cold start: {} ms left",
        deadline - now_ms
    );
    let rendered = metrics.render(0);
    assert!(
        rendered.lines().any(
            |l| l.starts_with("roomcast_function_init_duration_seconds_count")
                && l.contains("FixtureFunction")
        ),
        "the init was measured: {rendered}"
    );
}

#[tokio::test]
async fn a_runtime_that_never_asks_for_work_times_out() {
    let (f, _) = function("never-next", 1).await;
    let slow = f.call(Bytes::from_static(b"{}"), InvokeContext::default());
    assert!(
        tokio::time::timeout(Duration::from_secs(1), slow)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn missing_or_non_executable_programs_are_named_at_start_up() {
    let mut s = spec("serve", 3);
    // A CodeUri that is not there is the error, not the program in it
    // (nor, for Node or Python, the interpreter the process would run).
    for runtime in ["provided.al2023", "nodejs22.x", "python3.12"] {
        s.runtime = runtime.into();
        s.code_uri = fixtures().join("nowhere").display().to_string();
        match launch::resolve(&s, &tools()).await {
            Err(LaunchError::CodeUri { function, path }) => {
                assert_eq!(function, "FixtureFunction");
                assert!(path.ends_with("nowhere"), "{path}");
            }
            other => panic!("{runtime}: {other:?}"),
        }
    }
    s.runtime = "provided.al2023".into();
    let empty = std::env::temp_dir().join(format!("roomcast-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    s.code_uri = empty.display().to_string();
    let r = launch::resolve(&s, &tools()).await;
    let _ = std::fs::remove_dir_all(&empty);
    match r {
        Err(LaunchError::Program {
            function, problem, ..
        }) => {
            assert_eq!(function, "FixtureFunction");
            assert_eq!(problem, "does not exist");
        }
        other => panic!("{other:?}"),
    }
    let dir = std::env::temp_dir().join(format!("roomcast-noexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bootstrap"), "#!/bin/sh\n").unwrap();
    s.code_uri = dir.display().to_string();
    let r = launch::resolve(&s, &tools()).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(r, Err(LaunchError::Program { problem, .. }) if problem.contains("not executable")),
    );
    s.code_uri = fixtures().display().to_string();
    s.runtime = "python3.12".into();
    let no_python = Toolchain {
        python: "no-such-python-here".into(),
        ..tools()
    };
    assert!(matches!(
        launch::resolve(&s, &no_python).await,
        Err(LaunchError::Interpreter { .. })
    ));
    s.runtime = "java21".into();
    assert!(matches!(
        launch::resolve(&s, &tools()).await,
        Err(LaunchError::Runtime { .. })
    ));
}

/// `--python` as the README writes it (relative to where the emulator
/// starts) is made absolute, since the function's process runs in its
/// CodeUri; and an interpreter that cannot import awslambdaric is a
/// start-up error naming it, not a bare ImportError at the first connect.
#[tokio::test]
async fn python_is_resolved_absolute_and_probed_for_its_runtime_client() {
    require_python();
    let mut s = spec("serve", 3);
    s.runtime = "python3.12".into();
    // Tests run in the crate's directory.
    let relative = PathBuf::from("../tests/fixtures/lambda/python-without-site");
    assert!(relative.is_file(), "the fixture is at {relative:?}");
    let tools = Toolchain {
        python: relative,
        ..tools()
    };
    match launch::resolve(&s, &tools).await {
        Err(LaunchError::RuntimeClient {
            function,
            python,
            reason,
        }) => {
            assert_eq!(function, "FixtureFunction");
            assert!(python.starts_with('/'), "made absolute: {python}");
            assert!(python.ends_with("python-without-site"), "{python}");
            assert!(
                reason.contains("awslambdaric"),
                "the probe's own words: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Cargo functions are built together; when that build fails, each is
/// built alone so that every error names its own function. Functions with
/// a `bootstrap`, or whose binary is already built, are not built at all.
/// (A project with no Cargo.toml makes cargo fail at once, which keeps this
/// test fast while running the real cargo.)
#[tokio::test]
async fn a_failed_build_of_all_functions_names_each_failing_one() {
    let project = std::env::temp_dir().join(format!(
        "roomcast-nocargo-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(project.join("target/debug")).unwrap();
    let cargo_fn = |id: &str, binary: &str| FunctionSpec {
        logical_id: id.into(),
        binary: binary.into(),
        code_uri: project.display().to_string(),
        ..spec("serve", 3)
    };
    // Already built: left alone.
    std::fs::write(project.join("target/debug/built"), "").unwrap();
    let with_bootstrap = spec("serve", 3);
    let (a, b, built) = (
        cargo_fn("AFunction", "a"),
        cargo_fn("BFunction", "b"),
        cargo_fn("BuiltFunction", "built"),
    );
    let tools = Toolchain {
        project: project.clone(),
        target_dir: project.join("target"),
        ..tools()
    };
    let failed = launch::build_all(&[&a, &with_bootstrap, &b, &built], &tools).await;
    let _ = std::fs::remove_dir_all(&project);
    assert_eq!(
        failed.keys().collect::<Vec<_>>(),
        ["AFunction", "BFunction"]
    );
    for (id, e) in &failed {
        let text = e.to_string();
        assert!(text.starts_with(&format!("function {id}:")), "{text}");
        assert_eq!(text.matches("--bin").count(), 1, "one binary each: {text}");
    }
}
