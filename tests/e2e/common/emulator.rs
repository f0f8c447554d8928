//! Emulator test support: start one on a free port, probe handlers that
//! record what they receive, and a small WebSocket client.
#![allow(dead_code, clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use roomcast_emulator::lambda::registry::{Handler, InvokeError, InvokeFuture};
use roomcast_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single wait in these tests may take before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn repo_path(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Every event the probe handlers saw, in order.
#[derive(Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn push(&self, v: Value) {
        self.0.lock().unwrap().push(v);
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// Events of one `requestContext.eventType`.
    pub(crate) fn of_type(&self, t: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["requestContext"]["eventType"] == t)
            .collect()
    }

    /// Waits until `pred` holds for some recorded event, and returns it.
    pub(crate) async fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; saw {:#?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn handler(f: impl Fn(Value) -> InvokeFuture + Send + Sync + 'static) -> Handler {
    Arc::new(f)
}

fn ok(body: Option<String>) -> Result<Value, InvokeError> {
    Ok(json!({"statusCode": 200, "body": body}))
}

fn fail(msg: &str) -> Result<Value, InvokeError> {
    Err(InvokeError {
        error_type: "ProbeError".into(),
        error_message: msg.into(),
    })
}

/// Registers the probe handlers of tests/fixtures/probe-template.yaml.
pub(crate) fn with_probes(mut config: EmulatorConfig, rec: &Recorder) -> EmulatorConfig {
    let r = rec.clone();
    config = config.handler("probe-auth", handler(move |e| {
        r.push(e.clone());
        Box::pin(async move {
            let key = e["queryStringParameters"]["key"].as_str().unwrap_or_default().to_owned();
            let effect = if key == "deny" { "Deny" } else { "Allow" };
            match key.as_str() {
                "error" => fail("authorizer blew up"),
                "unauthorized" => fail("Unauthorized"),
                _ => Ok(json!({
                    "principalId": key,
                    "policyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Action": "execute-api:Invoke", "Effect": effect, "Resource": if key == "elsewhere" {
                            json!("arn:aws:execute-api:us-east-1:000000000000:another-api/test/$connect")
                        } else {
                            e["methodArn"].clone()
                        }}]},
                    "context": {"userId": key, "role": "tester", "level": 3},
                })),
            }
        })
    }));
    let r = rec.clone();
    config = config.handler(
        "probe-connect",
        handler(move |e| {
            r.push(e.clone());
            Box::pin(async move {
                let q = &e["queryStringParameters"];
                if let Some(status) = q["status"].as_str() {
                    return Ok(json!({"statusCode": status.parse::<u16>().unwrap()}));
                }
                if q["fail"].is_string() {
                    return fail("connect failed");
                }
                if q["slow"].is_string() {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let mut response = json!({"statusCode": 200});
                if let Some(p) = q["protocol"].as_str() {
                    response["headers"] = json!({"Sec-WebSocket-Protocol": p});
                }
                Ok(response)
            })
        }),
    );
    let r = rec.clone();
    config = config.handler(
        "probe-record",
        handler(move |e| {
            r.push(e);
            Box::pin(async { ok(None) })
        }),
    );
    let r = rec.clone();
    config = config.handler(
        "probe-echo",
        handler(move |e| {
            r.push(e.clone());
            Box::pin(async move { ok(Some(e.to_string())) })
        }),
    );
    config = config.handler(
        "probe-fail",
        handler(|_| Box::pin(async { fail("this handler always fails") })),
    );
    config = config.handler(
        "probe-slow",
        handler(|_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                ok(Some("too late".into()))
            })
        }),
    );
    config.handler(
        "probe-panic",
        handler(|_| Box::pin(async { panic!("probe handler panicked on purpose") })),
    )
}

/// Defaults for tests: port 0, the repo's web/ and template, and a cache
/// (runtime SDKs, the local CA) under the target directory unless
/// `ROOMCAST_CACHE_DIR` names one: tests never write to the home directory.
pub(crate) fn config(template: &str) -> EmulatorConfig {
    EmulatorConfig::default()
        .plugin(roomcast_emulator::plugins::roomcast::functions())
        .addr("127.0.0.1:0".parse().unwrap())
        .template(repo_path(template))
        .static_dir(Some(repo_path("web")))
        .cache_dir(cache_dir())
}

/// The development signing secret of the emulators the tests start (they
/// share `cache_dir`): for tokens the tests mint themselves.
pub(crate) fn installation_secret() -> String {
    roomcast_emulator::dev_secret::load_or_create(&cache_dir()).expect("the dev secret")
}

pub(crate) fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("ROOMCAST_CACHE_DIR").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo_path("target"), std::path::PathBuf::from)
                .join("roomcast-cache")
        },
        std::path::PathBuf::from,
    )
}

/// Fails the test if any AWS call of a process function was refused by
/// its role: Roomcast's scenarios must need no right their template does
/// not grant (the emulator checks the roles as IAM does in AWS).
pub(crate) fn assert_no_access_denied(denials: &roomcast_emulator::AccessDenials) {
    assert_eq!(
        denials.count(),
        0,
        "calls refused by the functions' roles (template.yaml lacks these rights):\n{}",
        denials.recent().join("\n")
    );
}

/// Checks, when dropped at the end of a test, that no call of `emu`'s
/// process functions was refused by its role; when the test fails for
/// another reason, prints the refusals (often the cause) instead.
pub(crate) fn no_access_denied(emu: &RunningEmulator) -> NoAccessDenied {
    NoAccessDenied(emu.access_denials())
}

/// See [`no_access_denied`].
pub(crate) struct NoAccessDenied(roomcast_emulator::AccessDenials);

impl Drop for NoAccessDenied {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_no_access_denied(&self.0);
        } else if self.0.count() > 0 {
            eprintln!(
                "calls refused by the functions' roles:\n{}",
                self.0.recent().join("\n")
            );
        }
    }
}

pub(crate) async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::bind(config)
        .await
        .expect("emulator starts")
        .spawn()
}

/// Checks that Roomcast's Lambda binaries are built and newer than every
/// source they were built from, so that tests running them as processes
/// never start `cargo build` themselves (which, inside `cargo test`, waits
/// on the target directory's lock and rebuilds with other features).
/// `bash infra/test.sh` builds them first; by hand, run the command below.
/// The sources are the ones cargo lists in the binary's dep-info file
/// (`target/debug/NAME.d`), so a change that cargo would not rebuild for
/// (a comment in Cargo.toml) does not count.
pub(crate) fn assert_lambda_binaries_fresh() {
    const BUILD: &str = "cargo build --workspace --bins --tests";
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_path("target"), std::path::PathBuf::from);
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified());
    for bin in roomcast_aws::in_process::BINARIES {
        let path = target.join("debug").join(bin);
        let built = modified(&path)
            .unwrap_or_else(|_| panic!("{} is missing: run `{BUILD}` first", path.display()));
        let dep_info = std::fs::read_to_string(path.with_extension("d"))
            .unwrap_or_else(|_| panic!("{}.d is missing: run `{BUILD}` first", path.display()));
        let sources = dep_info.split_once(": ").map_or("", |(_, s)| s);
        for source in sources.split_whitespace().map(std::path::Path::new) {
            // A source that is gone is a change too: the build must run.
            let changed = modified(source).map_or(true, |m| m > built);
            assert!(
                !changed,
                "{} is older than {}: run `{BUILD}` first",
                path.display(),
                source.display()
            );
        }
    }
}

/// A probe emulator and its recorder.
pub(crate) async fn probe(
    tune: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
) -> (RunningEmulator, Recorder) {
    let rec = Recorder::default();
    let emu = start(tune(with_probes(
        config("tests/fixtures/probe-template.yaml"),
        &rec,
    )))
    .await;
    (emu, rec)
}

/// Connects; `Err` carries the HTTP status for refused upgrades.
pub(crate) async fn try_connect(
    url: &str,
    protocol: Option<&str>,
) -> Result<(Ws, http::HeaderMap), u16> {
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")
    {
        Ok((ws, resp)) => Ok((ws, resp.headers().clone())),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect to {url} failed: {e}"),
    }
}

pub(crate) async fn connect(url: &str) -> Ws {
    match try_connect(url, None).await {
        Ok((ws, _)) => ws,
        Err(status) => panic!("upgrade to {url} refused with {status}"),
    }
}

pub(crate) async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// The next data or close message.
pub(crate) async fn next(ws: &mut Ws) -> Message {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return m,
            Some(Err(e)) => panic!("socket error: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// The next text frame as JSON.
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    match next(ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Skips frames until one of `type` arrives.
pub(crate) async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Waits for the server's close frame; returns its code and reason.
pub(crate) async fn closed(ws: &mut Ws) -> (u16, String) {
    loop {
        match next(ws).await {
            Message::Close(Some(CloseFrame { code, reason })) => {
                return (u16::from(code), reason.as_str().to_owned());
            }
            Message::Close(None) => return (1005, String::new()),
            _ => continue,
        }
    }
}

/// Asserts nothing arrives for a short while.
pub(crate) async fn silent(ws: &mut Ws, for_ms: u64) {
    match tokio::time::timeout(Duration::from_millis(for_ms), ws.next()).await {
        Err(_) => {}
        Ok(m) => panic!("expected silence, got {m:?}"),
    }
}

/// The emulator's `/metrics` text.
pub(crate) async fn metrics(emu: &RunningEmulator) -> String {
    reqwest::get(format!("http://{}/metrics", emu.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A dev token from the emulator's /dev/token.
pub(crate) async fn dev_token(emu: &RunningEmulator, user: &str) -> String {
    let url = format!(
        "http://{}/dev/token?user={user}&name={user}%20name",
        emu.addr
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// An SDK client for the emulator's @connections API.
pub(crate) async fn management(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let sdk = super::sdk().await;
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// `roomcast dev` as a child process, as a developer runs it: its port
/// (read from the banner) and its log lines (stderr, `RUST_LOG=warn`,
/// no colour). Killed when dropped.
pub(crate) struct DevProcess {
    child: std::process::Child,
    pub(crate) port: u16,
    pub(crate) lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl DevProcess {
    /// Starts `roomcast dev --port 0` with `args`.
    pub(crate) fn start(args: &[std::ffi::OsString]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["dev", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("roomcast dev (cargo build --workspace --bins --tests)");
        let stdout = child.stdout.take().unwrap();
        let port: Option<u16> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next()?.parse().ok())
            });
        let Some(port) = port else {
            // It exited: its last words say why.
            let mut why = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut why);
            panic!("roomcast dev did not start: {why}");
        };
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, port, lines }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `emu` and learns the connection's id from an `echo`
/// route's reply (the probe template's).
pub(crate) async fn connected_echo(emu: &RunningEmulator, key: &str) -> (Ws, String) {
    let mut ws = connect(&format!("ws://{}/test?key={key}", emu.addr)).await;
    send(&mut ws, json!({"action": "echo"})).await;
    let id = recv(&mut ws).await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    (ws, id)
}

/// Connects as `user` with a dev token, says hello and joins `room`:
/// the socket and its connection id.
pub(crate) async fn join_with_token(
    emu: &RunningEmulator,
    token: &str,
    room: &str,
) -> (Ws, String) {
    let (mut ws, id) = connect_with_token(emu, token).await;
    send(&mut ws, json!({"action": "join", "room": room})).await;
    recv_type(&mut ws, "joined").await;
    (ws, id)
}

/// A connection with `token`, welcomed: the socket and its connection id.
pub(crate) async fn connect_with_token(emu: &RunningEmulator, token: &str) -> (Ws, String) {
    let mut ws = connect(&format!("{}?token={token}", emu.urls.websocket)).await;
    send(&mut ws, json!({"action": "hello"})).await;
    let id = recv_type(&mut ws, "welcome").await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    (ws, id)
}

/// Waits until `done` says so, checking every 20 ms; fails after [`WAIT`]
/// naming `what`. For state the test cannot be told about by an event.
pub(crate) async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = tokio::time::timeout(WAIT, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: not within {WAIT:?}");
}

/// Waits for the socket to end without a close frame (a cut, a 410 fault).
pub(crate) async fn ends_without_close(ws: &mut Ws) {
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return Err(format!("a close frame: {f:?}")),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ok(()),
            }
        }
    })
    .await
    .expect("the socket ends");
    assert!(ended.is_ok(), "{ended:?}");
}

/// The entries of the inspector's live stream (`GET /_roomcast/timeline/
/// stream`), read until `pick` returns something from what was seen.
pub(crate) async fn from_timeline<T>(
    stream: &mut reqwest::Response,
    mut pick: impl FnMut(&[Value]) -> Option<T>,
) -> T {
    let mut seen: Vec<Value> = Vec::new();
    let mut buf = String::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("data: ") {
                    seen.push(serde_json::from_str(data.trim()).unwrap());
                }
            }
            if let Some(found) = pick(&seen) {
                return found;
            }
        }
    })
    .await
    .expect("what the test waits for on the timeline")
}

/// The Python with awslambdaric that the test command prepares.
pub(crate) fn python() -> String {
    match std::env::var("ROOMCAST_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "ROOMCAST_TEST_PYTHON is not set. Python functions run with PyPI's awslambdaric: \
             run the suite with `bash infra/test.sh`, or `python3 -m venv .venv && .venv/bin/pip install awslambdaric` \
             and `export ROOMCAST_TEST_PYTHON=$PWD/.venv/bin/python`."
        ),
    }
}

/// aws-sdk-lambda pointed at the emulator's Invoke API.
pub(crate) async fn lambda_client(emu: &RunningEmulator) -> aws_sdk_lambda::Client {
    let sdk = super::sdk().await;
    aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&sdk)
            .endpoint_url(format!("http://{}", emu.addr))
            .build(),
    )
}

/// The next event of a Rust client that `pred` accepts; others are skipped.
pub(crate) async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<roomcast_client::Event>,
    what: &str,
    pred: impl Fn(&roomcast_client::Event) -> bool,
) -> roomcast_client::Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events
                .recv()
                .await
                .unwrap_or_else(|| panic!("events ended waiting for {what}"));
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The emulator on the process-function fixture (tests/fixtures/lambda: a
/// custom runtime behind the Runtime API, Python, Node), async retries
/// 100 ms apart, as `tune` adjusts it.
pub(crate) async fn lambdas(
    tune: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
) -> RunningEmulator {
    start(tune(
        config("tests/fixtures/lambda/template.yaml")
            .python(python())
            .async_retry_base(Duration::from_millis(100)),
    ))
    .await
}

/// Roomcast's template with every function a process, on moto, a table of
/// its own. The Lambda binaries must be built (`assert_lambda_binaries_fresh`).
pub(crate) async fn roomcast_processes_on_moto() -> RunningEmulator {
    assert_lambda_binaries_fresh();
    let table = format!("roomcast-e2e-{}", uuid::Uuid::new_v4().simple());
    start(
        config("template.yaml")
            .dynamodb(super::dynamodb_endpoint(), table, true)
            .functions(roomcast_emulator::FunctionsMode::Process),
    )
    .await
}

/// An Invoke API payload.
pub(crate) fn payload(v: &Value) -> aws_sdk_lambda::primitives::Blob {
    aws_sdk_lambda::primitives::Blob::new(v.to_string().into_bytes())
}

/// A `RequestResponse` invocation of `function` with `event` as its JSON
/// payload, through aws-sdk-lambda.
pub(crate) async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Value,
) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
    invoke_as(lambda, function, event, None).await
}

/// The same as an `Event` invocation (queued; answered 202).
pub(crate) async fn invoke_event(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Value,
) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
    let kind = aws_sdk_lambda::types::InvocationType::Event;
    invoke_as(lambda, function, event, Some(kind)).await
}

async fn invoke_as(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Value,
    kind: Option<aws_sdk_lambda::types::InvocationType>,
) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
    lambda
        .invoke()
        .function_name(function)
        .set_invocation_type(kind)
        .payload(payload(event))
        .send()
        .await
        .unwrap()
}

/// An Invoke API answer's payload as JSON.
pub(crate) fn parse(out: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    serde_json::from_slice(out.payload().map(|b| b.as_ref()).unwrap_or(b"null")).unwrap()
}

/// The inspector's live stream, opened: from its first bytes on, the
/// emulator records frames, posts and output lines.
pub(crate) async fn watch(emu: &RunningEmulator) -> reqwest::Response {
    let mut stream = reqwest::get(format!("http://{}/_roomcast/timeline/stream", emu.addr))
        .await
        .unwrap();
    stream.chunk().await.unwrap().unwrap();
    stream
}

/// A request to the emulator's own API, `/_roomcast/{path}` (faults, the
/// inspector's views, the acts on connections and functions).
pub(crate) fn dev_api(
    emu: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("http://{}/_roomcast/{path}", emu.addr))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
}

/// The status of a bodiless call to `/_roomcast/{path}`.
pub(crate) async fn dev_api_status(
    emu: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
) -> u16 {
    dev_api(emu, method, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET /_roomcast/{path}` as JSON.
pub(crate) async fn dev_api_json(emu: &RunningEmulator, path: &str) -> Value {
    dev_api(emu, reqwest::Method::GET, path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
