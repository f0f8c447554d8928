//! The command line as a newcomer meets it (issue 37, "the first hour"):
//! each test runs the `roomcast` binary, as the README's commands do.
//! Every failure exits non-zero, in time, with one line that says what to
//! do; the clients' exit statuses tell an emulator that is not running
//! from a refused token, a revoked user and a kick; start-up checks what
//! it can (the DynamoDB endpoint, `CodeUri`, the interpreter) instead of
//! failing at the first connect; the banner fits the template.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common;
use common::emulator::*;
use roomcast_emulator::RunningEmulator;
use roomcast_server_api::ServerApi;
use serde_json::{Value, json};

/// The deadline detector for one command: every command under test gives
/// up by itself well before (most with `--timeout 1s`).
const BOUND: Duration = Duration::from_secs(60);

/// What a finished command left.
#[derive(Debug)]
struct Ran {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The one line a failure prints, asserted to be the only one (with
    /// `RUST_LOG=warn` nothing else is logged by a client command).
    fn one_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(lines[0].starts_with("roomcast: "), "{self:?}");
        assert!(
            !lines[0].contains("DispatchFailure("),
            "no debug dumps: {self:?}"
        );
        lines[0]
    }

    /// The last stderr line (start-up logs may come before it).
    fn last_line(&self) -> &str {
        let last = self
            .stderr
            .lines()
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        assert!(last.starts_with("roomcast: "), "{self:?}");
        assert!(
            !self.stderr.contains("DispatchFailure("),
            "no debug dumps: {self:?}"
        );
        last
    }
}

/// `roomcast` with `args`, from the repository's root, with none of the
/// caller's Roomcast settings, bounded by [`BOUND`].
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roomcast"));
    c.args(args)
        .current_dir(repo_path(""))
        .env_remove("ROOMCAST_URL")
        .env_remove("ROOMCAST_TOKEN")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

async fn run(mut c: Command) -> Ran {
    let child = c
        .spawn()
        .expect("roomcast (cargo build --workspace --bins --tests)");
    let id = child.id();
    let waited = tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(output) = waited else {
        // Best effort: the process is past its deadline detector.
        let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
        panic!("roomcast did not finish within {BOUND:?}: {c:?}");
    };
    let output = output.unwrap().unwrap();
    Ran {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn roomcast(args: &[&str]) -> Ran {
    run(command(args)).await
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `roomcast dev` as a child: the banner it printed, and its log so far.
struct Dev {
    child: std::process::Child,
    port: u16,
    banner: Vec<String>,
    log: mpsc::Receiver<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Log lines until one contains `what` (or the deadline).
    fn log_line(&self, what: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {what:?}: {e}"),
            }
        }
    }
}

/// Starts `roomcast dev --port 0 ARGS`: `Ok` once its banner is out, or
/// `Err` with what it left when it exited instead.
fn dev(args: &[&str], configure: impl FnOnce(&mut Command)) -> Result<Dev, Ran> {
    let mut c = command(&["dev", "--port", "0"]);
    c.args(args);
    configure(&mut c);
    let mut child = c.spawn().expect("roomcast dev");
    let (out_tx, out) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (log_tx, log) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let mut banner = Vec::new();
    loop {
        match out.recv_timeout(BOUND) {
            Ok(line) => {
                let last = line.trim_start().starts_with("Events:");
                banner.push(line);
                if last {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap().code();
                let stderr: Vec<String> = log.try_iter().collect();
                return Err(Ran {
                    status,
                    stdout: banner.join("\n"),
                    stderr: stderr.join("\n"),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("roomcast dev printed neither a banner nor an exit in {BOUND:?}");
            }
        }
    }
    let port = banner
        .iter()
        .find_map(|l| {
            l.split("listening on 127.0.0.1:")
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .expect("a listening line");
    Ok(Dev {
        child,
        port,
        banner,
        log,
    })
}

/// `dev` that must fail: what it left.
fn dev_fails(args: &[&str], configure: impl FnOnce(&mut Command)) -> Ran {
    match dev(args, configure) {
        Err(ran) => ran,
        Ok(d) => panic!("roomcast dev started: {:?}", d.banner),
    }
}

async fn emulator() -> RunningEmulator {
    start(config("template.yaml")).await
}

/// With no emulator running, each client gives up at its deadline with
/// exit status 3 and says what to start.
#[tokio::test]
async fn clients_with_nothing_to_talk_to_give_up_with_status_3() {
    let port = closed_port();
    let ws = format!("ws://127.0.0.1:{port}/prod");
    let http = format!("http://127.0.0.1:{port}");
    let send = roomcast(&[
        "send",
        "--room",
        "r",
        "--data",
        "{}",
        "--url",
        &ws,
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(send.status, Some(3), "{send:?}");
    assert!(
        send.one_line().contains("cannot reach the emulator"),
        "{send:?}"
    );
    // With a token there is no /dev/token to ask: the WebSocket itself
    // is tried until the deadline.
    for args in [
        vec!["send", "--room", "r", "--data", "{}", "--token", "t"],
        vec!["listen", "--room", "r", "--token", "t"],
    ] {
        let mut args = args;
        args.extend(["--url", &ws, "--timeout", "1s"]);
        let ran = roomcast(&args).await;
        assert_eq!(ran.status, Some(3), "{ran:?}");
        let line = ran.one_line();
        assert!(
            line.contains(&format!("no answer from {ws} within 1s")),
            "{line}"
        );
        assert!(line.contains("roomcast dev running"), "{line}");
    }
    for args in [
        vec!["token", "--user", "cli", "--url", &http],
        vec!["events", "--url", &http],
        vec!["fault", "list", "--url", &http],
    ] {
        let ran = roomcast(&args).await;
        assert_eq!(ran.status, Some(3), "{args:?}: {ran:?}");
        assert!(
            ran.one_line().contains("cannot reach the emulator"),
            "{ran:?}"
        );
    }
}

/// A handshake refused with 401 (no token: API Gateway refuses an empty
/// identity source without invoking the authorizer), one refused with 403
/// (a token the authorizer denies; a revoked user) and a kick each exit
/// with their own status, saying why.
#[tokio::test]
async fn refusals_and_kicks_exit_with_their_own_status() {
    let emu = emulator().await;
    let ws = emu.urls.websocket.clone();
    let send = |token: &'static str| {
        let ws = ws.clone();
        async move {
            roomcast(&[
                "send",
                "--room",
                "r",
                "--data",
                "{}",
                "--url",
                &ws,
                "--token",
                token,
                "--timeout",
                "10s",
            ])
            .await
        }
    };
    let none = send("").await;
    assert_eq!(none.status, Some(4), "{none:?}");
    assert!(none.one_line().contains("401"), "{none:?}");
    let garbage = send("garbage").await;
    assert_eq!(garbage.status, Some(5), "{garbage:?}");
    assert!(garbage.one_line().contains("403"), "{garbage:?}");

    let api = ServerApi::new(lambda_client(&emu).await, "PublishFunction");
    let hour = chrono_free_now_secs() + 3600;
    api.revoke("mallory", hour, 4003, "banned for an hour")
        .await
        .unwrap();
    let revoked = roomcast(&[
        "send",
        "--room",
        "r",
        "--data",
        "{}",
        "--url",
        &ws,
        "--user",
        "mallory",
        "--timeout",
        "10s",
    ])
    .await;
    assert_eq!(revoked.status, Some(5), "{revoked:?}");

    let listen = command(&["listen", "--room", "r", "--url", &ws, "--user", "kim"]);
    let listening = tokio::spawn(run(listen));
    eventually("kim connected", || async {
        dev_api_json(&emu, "connections").await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user"] == "kim")
    })
    .await;
    api.disconnect("kim", 4001, "kicked by a moderator", false)
        .await
        .unwrap();
    let kicked = listening.await.unwrap();
    assert_eq!(kicked.status, Some(6), "{kicked:?}");
    assert!(
        kicked.one_line().contains("kicked by a moderator"),
        "{kicked:?}"
    );
}

fn chrono_free_now_secs() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

/// One `ROOMCAST_URL`, in either form, serves every command; `send` ends
/// with a close frame, so the server sees a normal close (1000), not a
/// dropped socket (1006).
#[tokio::test]
async fn one_url_serves_every_command_and_send_closes_cleanly() {
    let emu = emulator().await;
    let http = format!("http://{}/prod", emu.addr);
    let mut sent = command(&[
        "send",
        "--room",
        "lobby",
        "--data",
        r#"{"text":"hi"}"#,
        "--id",
        "m-1",
    ]);
    sent.env("ROOMCAST_URL", &http);
    let sent = run(sent).await;
    assert_eq!(sent.status, Some(0), "{sent:?}");
    let ack: Value = serde_json::from_str(sent.stdout.trim()).unwrap();
    assert_eq!(ack, json!({"id": "m-1", "seq": 1, "duplicate": false}));
    eventually("the send's connection closed", || async {
        closes(&emu, "cli").await.len() == 1
    })
    .await;
    assert_eq!(closes(&emu, "cli").await, vec![1000]);
    for args in [vec!["token", "--user", "cli"], vec!["fault", "list"]] {
        let mut c = command(&args);
        c.env("ROOMCAST_URL", &http);
        let ran = run(c).await;
        assert_eq!(ran.status, Some(0), "{args:?}: {ran:?}");
    }
}

/// The close codes of `user`'s connections, from the inspector's timeline.
async fn closes(emu: &RunningEmulator, user: &str) -> Vec<u64> {
    dev_api_json(emu, "timeline").await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "disconnect" && e["user"] == user)
        .map(|e| e["code"].as_u64().unwrap())
        .collect()
}

/// `fault cut` takes ids beginning with `-`; `fault cold` exists; `fault
/// add --help` lists every kind; a refusal is one line with the API's
/// reason, whatever its status.
#[tokio::test]
async fn fault_commands_take_any_id_list_their_kinds_and_refuse_in_one_line() {
    let emu = emulator().await;
    let url = format!("http://{}", emu.addr);
    let help = roomcast(&["fault", "add", "--help"]).await;
    assert_eq!(help.status, Some(0));
    for kind in roomcast_emulator::faults::KINDS {
        assert!(
            help.stdout.contains(kind),
            "{kind} missing from:\n{}",
            help.stdout
        );
    }
    let dash = roomcast(&["fault", "cut", "-s9Kq_x=", "--url", &url]).await;
    assert_eq!(dash.status, Some(1), "{dash:?}");
    let line = dash.one_line();
    assert!(line.contains("404"), "the id reached the emulator: {line}");
    let token = dev_token(&emu, "dee").await;
    let (mut ws, id) = connect_with_token(&emu, &token).await;
    let cut = roomcast(&["fault", "cut", &id, "--url", &url]).await;
    assert_eq!(cut.status, Some(0), "{cut:?}");
    ends_without_close(&mut ws).await;
    let unknown = roomcast(&["fault", "add", r#"{"fault":"nope"}"#, "--url", &url]).await;
    assert_eq!(unknown.status, Some(1));
    let line = unknown.one_line();
    assert!(line.contains("400") && line.contains("nope"), "{line}");
    assert!(
        !line.contains(r#"{"message""#),
        "the message, not raw JSON: {line}"
    );
    // Roomcast's own functions run in the emulator's process here: no
    // instances to stop (400); an unknown function is a 404.
    for (function, status) in [("ConnectFunction", "400"), ("NoSuchFunction", "404")] {
        let cold = roomcast(&["fault", "cold", function, "--url", &url]).await;
        assert_eq!(cold.status, Some(1), "{cold:?}");
        assert!(cold.one_line().contains(status), "{cold:?}");
    }
}

/// `roomcast events` against Roomcast's template with its events off
/// says how to turn them on, at once, rather than wait forever.
#[tokio::test]
async fn events_against_an_emulator_with_events_off_says_how_to_turn_them_on() {
    let emu = emulator().await;
    let ran = roomcast(&["events", "--url", &format!("http://{}", emu.addr)]).await;
    assert_eq!(ran.status, Some(1), "{ran:?}");
    assert!(
        ran.one_line()
            .contains("--parameter-overrides EventBusName=default"),
        "{ran:?}"
    );
}

/// The banner fits the template: Roomcast's shows the token, the demo
/// and whether events are on; a team's own (the echo functions) shows
/// neither token nor demo; both show the inspector. Logs written to a pipe
/// carry no colour codes.
#[tokio::test]
async fn the_banner_fits_the_template_and_piped_logs_have_no_colour() {
    let on = dev(&["--parameter-overrides", "EventBusName=default"], |c| {
        c.env_remove("NO_COLOR").env("RUST_LOG", "info");
    })
    .unwrap();
    let banner = on.banner.join("\n");
    for line in [
        "?token=JWT",
        "Inspector:",
        "/_roomcast/",
        "Demo:",
        "Dev token:",
        "Events:          on (bus default)",
    ] {
        assert!(banner.contains(line), "{line} missing from:\n{banner}");
    }
    let logged = on.log_line("template loaded");
    assert!(
        !logged.contains('\u{1b}'),
        "no ANSI codes in a piped log: {logged:?}"
    );
    drop(on);
    let off = dev(&[], |_| {}).unwrap();
    let banner = off.banner.join("\n");
    assert!(
        banner.contains(
            "Events:          off (start with --parameter-overrides EventBusName=default)"
        ),
        "{banner}"
    );
    drop(off);
    let dir = std::env::temp_dir().join(format!("roomcast-echo-{}", uuid::Uuid::new_v4()));
    let echo = dev(
        &[
            "--template",
            "tests/fixtures/echo/template.yaml",
            "--no-tls",
            "--python",
            &python(),
            "--parameter-overrides",
            &format!("RecordDir={}", dir.display()),
        ],
        |_| {},
    )
    .unwrap();
    let banner = echo.banner.join("\n");
    assert!(banner.contains("Inspector:"), "{banner}");
    for absent in ["?token=JWT", "Demo:", "Dev token:", "Events:          o"] {
        assert!(
            !banner.contains(absent),
            "{absent} in a foreign template's banner:\n{banner}"
        );
    }
    // nodejs22.x on another Node: said once at start-up, in one line.
    if let Some(installed) = node_major()
        && installed != 22
    {
        let line = echo.log_line("Lambda runs Node");
        assert!(
            line.contains("NodeEcho") && line.contains("Node 22"),
            "{line}"
        );
    }
    drop(echo);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The installed Node's major version.
pub(crate) fn node_major() -> Option<u32> {
    let out = Command::new("node").arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// A template with one Python function behind `$default`, in `dir`.
fn python_template(dir: &std::path::Path, code_uri: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let template = dir.join("template.yaml");
    std::fs::write(
        &template,
        format!(
            r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{Name: one, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {{ApiId: !Ref Api, StageName: one}}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {{ApiId: !Ref Api, RouteKey: $default, RouteResponseSelectionExpression: $default, Target: !Join ["/", ["integrations", !Ref Integration]]}}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {{ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Fn.Arn}}/invocations"}}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {{Runtime: python3.12, Handler: app.handler, CodeUri: {code_uri}}}
"#
        ),
    )
    .unwrap();
    template
}

/// What can be checked at start-up is: a missing `CodeUri`, an
/// interpreter without awslambdaric, a DynamoDB endpoint nobody listens
/// on, a table that is not there. Each stops `roomcast dev` at once with
/// one line naming the thing, the reason and the fix.
#[tokio::test]
async fn start_up_checks_what_it_can_and_stops_with_one_line() {
    let dir = std::env::temp_dir().join(format!("roomcast-first-hour-{}", uuid::Uuid::new_v4()));
    let code = repo_path("tests/fixtures/lambda/python");
    let missing = python_template(&dir.join("missing"), "nowhere/");
    let ran = dev_fails(
        &[
            "--template",
            missing.to_str().unwrap(),
            "--python",
            &python(),
            "--no-tls",
        ],
        |_| {},
    );
    assert_ne!(ran.status, Some(0));
    let line = ran.last_line();
    assert!(
        line.contains("function Fn: its CodeUri") && line.contains("nowhere"),
        "{line}"
    );

    let present = python_template(&dir.join("present"), code.to_str().unwrap());
    let ran = dev_fails(
        &[
            "--template",
            present.to_str().unwrap(),
            "--python",
            "tests/fixtures/lambda/python-without-site",
            "--no-tls",
        ],
        |_| {},
    );
    let line = ran.last_line();
    assert!(
        line.contains("cannot import awslambdaric") && line.contains("pip install awslambdaric"),
        "{line}"
    );

    let nobody = format!("http://127.0.0.1:{}", closed_port());
    for extra in [&[][..], &["--create-table"][..]] {
        let mut args = vec!["--dynamodb-endpoint", nobody.as_str(), "--no-tls"];
        args.extend(extra);
        let ran = dev_fails(&args, |_| {});
        let line = ran.last_line();
        assert!(
            line.contains(&format!("cannot reach DynamoDB at {nobody}")),
            "{line}"
        );
        assert!(line.contains("memory store"), "{line}");
    }

    let moto = common::dynamodb_endpoint();
    let table = format!("absent-{}", uuid::Uuid::new_v4().simple());
    let ran = dev_fails(
        &["--dynamodb-endpoint", &moto, "--table", &table, "--no-tls"],
        |_| {},
    );
    let line = ran.last_line();
    assert!(
        line.contains(&table) && line.contains("--create-table"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's `--python .venv/bin/python`: a path relative to where
/// `roomcast dev` starts runs Python functions, although their processes
/// run in their `CodeUri`.
#[tokio::test]
async fn a_relative_python_runs_python_functions() {
    let python = python();
    let root = repo_path("");
    let relative = std::path::Path::new(&python)
        .strip_prefix(&root)
        .map_or_else(|_| python.clone(), |p| p.display().to_string());
    assert!(
        !relative.starts_with('/'),
        "ROOMCAST_TEST_PYTHON ({python}) must be inside the repository for this test (bash infra/test.sh makes .venv there)"
    );
    let dev = dev(
        &[
            "--template",
            "tests/fixtures/lambda/template.yaml",
            "--python",
            &relative,
            "--no-tls",
        ],
        |_| {},
    )
    .unwrap();
    let mut ws = connect(&format!("ws://127.0.0.1:{}/test", dev.port)).await;
    send(&mut ws, json!({"action": "vote"})).await;
    let seen = recv(&mut ws).await;
    assert_eq!(seen["runtime"], "python", "{seen}");
}

/// `roomcast table create` against a local endpoint needs no AWS
/// configuration: no region, no credentials, no IMDS warnings.
#[tokio::test]
async fn table_create_needs_no_aws_configuration() {
    let home = std::env::temp_dir().join(format!("roomcast-home-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let bare = |c: &mut Command| {
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &home);
    };
    let table = format!("created-{}", uuid::Uuid::new_v4().simple());
    let moto = common::dynamodb_endpoint();
    let mut c = command(&["table", "create", "--endpoint", &moto, "--table", &table]);
    bare(&mut c);
    let made = run(c).await;
    assert_eq!(made.status, Some(0), "{made:?}");
    assert!(
        !made.stderr.contains("IMDS") && !made.stderr.contains("WARN"),
        "{made:?}"
    );
    let nobody = format!("http://127.0.0.1:{}", closed_port());
    let mut c = command(&["table", "create", "--endpoint", &nobody, "--table", &table]);
    bare(&mut c);
    let refused = run(c).await;
    assert_eq!(refused.status, Some(1), "{refused:?}");
    let line = refused.one_line();
    assert!(
        line.contains(&format!("cannot create table {table} at {nobody}")),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// An emulator whose store fails every call refuses every handshake
/// (500): `send` keeps trying until its deadline, then exits 3 saying
/// what it last saw, instead of trying forever in silence.
#[tokio::test]
async fn send_against_a_failing_store_gives_up_at_its_deadline() {
    let emu = emulator().await;
    let token = dev_token(&emu, "sam").await;
    let added = dev_api(&emu, reqwest::Method::POST, "faults")
        .json(&json!({"fault": "store-error", "error": "unavailable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let ran = roomcast(&[
        "send",
        "--room",
        "r",
        "--data",
        "{}",
        "--url",
        &emu.urls.websocket,
        "--token",
        &token,
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(ran.status, Some(3), "{ran:?}");
    let line = ran.one_line();
    assert!(
        line.contains("within 1s (last:"),
        "says what it last saw: {line}"
    );
}

/// `listen` stops on SIGTERM whenever it comes (its handler is armed once,
/// not between events), closing with 1000.
#[tokio::test]
async fn listen_stops_on_sigterm_with_a_normal_close() {
    let emu = emulator().await;
    let child = command(&[
        "listen",
        "--room",
        "r",
        "--url",
        &emu.urls.websocket,
        "--user",
        "lee",
    ])
    .spawn()
    .unwrap();
    let pid = child.id();
    eventually("lee connected", || async {
        dev_api_json(&emu, "connections").await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user"] == "lee")
    })
    .await;
    // The room's traffic keeps the loop busy while the signal arrives.
    let token = dev_token(&emu, "sue").await;
    let (mut ws, _) = connect_with_token(&emu, &token).await;
    send(&mut ws, json!({"action": "join", "room": "r"})).await;
    recv_type(&mut ws, "joined").await;
    for i in 0..20 {
        send(
            &mut ws,
            json!({"action": "send", "room": "r", "id": format!("m{i}"), "data": i}),
        )
        .await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("listen stops")
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    eventually("lee's close", || async {
        !closes(&emu, "lee").await.is_empty()
    })
    .await;
    assert_eq!(closes(&emu, "lee").await, vec![1000]);
}
