//! `roomcast bench`: starts the servers, runs the scenarios, prints results.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use roomcast_aws::auth::{DevClaims, Right, RoomRights, mint_hs256};
mod load;

use load::{self as bench, Target};

use crate::{BenchArgs, out};

mod floor;
mod hot;
mod invoke;
mod reference;

/// A server process started for the bench; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `roomcast ARGS` and waits for its "listening on 127.0.0.1:PORT".
fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    spawn_exe(&exe, args, envs)
}

/// Starts `exe ARGS` (another build of roomcast) as `spawn` does.
fn spawn_exe(
    exe: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Result<Server, String> {
    let mut child = Command::new(exe)
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {args:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            return Err(format!("{args:?} exited before listening"));
        };
        if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or("bad port")?;
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe. Its logs
    // (warnings and up, RUST_LOG above) go to the inherited stderr.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server { child, port })
}

/// Reads the emulator's live timeline until it ends, as an open inspector
/// page does, so that the emulator records frames and posts.
fn watch_timeline(port: u16) {
    tokio::spawn(async move {
        let url = format!("http://127.0.0.1:{port}/_roomcast/timeline/stream");
        let Ok(mut stream) = reqwest::get(&url).await else {
            tracing::warn!(%url, "could not open the timeline");
            return;
        };
        while let Ok(Some(_)) = stream.chunk().await {}
    });
}

fn list(s: &str) -> Vec<usize> {
    s.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

/// Mints tokens for bench users: join and send on every room, but no
/// presence right. With presence every join is announced to every member, so
/// filling a room of N costs O(N²) posts; big broadcast rooms go without it.
fn dev_tokens() -> bench::Tokens {
    tokens(vec![Right::Join, Right::Send])
}

/// Tokens with these rights on every room.
fn tokens(rights: Vec<Right>) -> bench::Tokens {
    // The emulators the bench starts sign with the installation's secret,
    // kept in the cache directory they share with the bench.
    let secret = roomcast_emulator::dev_secret::load_or_create(
        &roomcast_emulator::lambda::runtime_sdk::default_cache_dir(),
    )
    .unwrap_or_default();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 + 3600)
        .unwrap_or(0);
    Arc::new(move |i| {
        let claims = DevClaims {
            sub: format!("bench-{i}"),
            name: format!("bench {i}"),
            exp,
            rooms: RoomRights::new(std::collections::BTreeMap::from([(
                "*".to_owned(),
                rights.clone(),
            )])),
            direct: false,
            iss: None,
            aud: None,
        };
        mint_hs256(&claims, secret.as_bytes()).unwrap_or_default()
    })
}

/// `presence`: per size, an emulator with the roster cap (the default) and
/// one without it, each started fresh and stopped before its members hang
/// up, so one fill's departures never run beside the next fill.
async fn presence(args: &BenchArgs) -> Result<(), String> {
    let limit = std::time::Duration::from_secs(args.presence_seconds);
    for n in list(&args.presence_sizes) {
        for (name, cap) in [
            ("roomcast", None),
            ("roomcast-uncapped", Some("PresenceMax=1000000")),
        ] {
            let mut argv = vec!["dev", "--port", "0", "--outbound-queue", "4096"];
            argv.extend(
                cap.map(|c| ["--parameter-overrides", c])
                    .into_iter()
                    .flatten(),
            );
            let server = spawn(&argv, &NO_LIMITS)?;
            let target = Target::Roomcast {
                name,
                url: format!("ws://127.0.0.1:{}/prod", server.port),
                tokens: tokens(vec![Right::Join, Right::Send, Right::Presence]),
            };
            let metrics = format!("http://127.0.0.1:{}/metrics", server.port);
            match bench::presence_fill(&target, n, &metrics, limit).await {
                Ok((result, sockets)) => {
                    out(&result.to_string());
                    drop(server);
                    drop(sockets);
                }
                Err(e) => line(Err(e), "presence", &target),
            }
        }
    }
    Ok(())
}

/// `hot-room`: per target (the memory store; with `--dynamodb-endpoint`,
/// moto, and moto behind the latency model), closed-loop runs for each
/// sender count, then open-loop runs at half of what one closed-loop sender
/// achieved there. Every run gets a fresh emulator and, on moto, a fresh
/// table: moto copies the whole table on every TransactWriteItems (to roll
/// it back), so a table that grew through earlier runs would make later
/// runs slower for moto's reasons, not Roomcast's.
async fn hot_room(args: &BenchArgs) -> Result<(), String> {
    let (_proxy, mut targets) = hot_targets(args)?;
    let wanted: Vec<&str> = args.hot_targets.split(',').map(str::trim).collect();
    targets.retain(|(name, _)| {
        let kind = match name.as_str() {
            "roomcast" => "memory",
            "roomcast-moto" => "moto",
            _ => "moto-latency",
        };
        wanted.contains(&kind)
    });
    let senders = list(&args.hot_senders);
    for (name, endpoint) in targets {
        let mut one_sender = None;
        for (k, closed) in [true, false].into_iter().enumerate() {
            for &n in &senders {
                let mode = if closed {
                    hot::Mode::Closed
                } else {
                    let total = args.hot_open_total.or(one_sender.map(|a: f64| a / 2.0));
                    let Some(total) = total.filter(|t| *t > 0.0) else {
                        return Err("no closed-loop single-sender figure to take the open-loop rate from: include 1 in --hot-senders or set --hot-open-total".into());
                    };
                    hot::Mode::Open(total / n as f64)
                };
                let run = hot::HotRun {
                    senders: n,
                    mode,
                    seconds: args.hot_seconds,
                    room: format!("hot-{k}-{n}"),
                };
                let server = hot_server(endpoint.as_deref())?;
                let url = format!("ws://127.0.0.1:{}/prod", server.port);
                match hot::hot_room(&name, &url, &dev_tokens(), &run).await {
                    Ok(v) => {
                        if closed && n == 1 {
                            one_sender = v["acks_per_s"].as_f64();
                        }
                        out(&v.to_string());
                    }
                    Err(e) => out(&serde_json::json!({"scenario": "hot-room", "target": name, "senders": n, "error": e.to_string()}).to_string()),
                }
                drop(server);
            }
        }
    }
    Ok(())
}

/// `hot-room` targets by name, each with the DynamoDB endpoint it uses
/// (none: the memory store).
type HotTargets = Vec<(String, Option<String>)>;

/// The `hot-room` targets, and the latency proxy they need kept alive.
fn hot_targets(args: &BenchArgs) -> Result<(Option<Server>, HotTargets), String> {
    let mut targets = vec![("roomcast".to_owned(), None)];
    let Some(endpoint) = &args.dynamodb_endpoint else {
        return Ok((None, targets));
    };
    let latency = args.hot_latency_ms.to_string();
    let proxy = spawn(
        &[
            "latency-proxy",
            "--upstream",
            endpoint,
            "--latency-ms",
            &latency,
        ],
        &[],
    )?;
    targets.push(("roomcast-moto".to_owned(), Some(endpoint.clone())));
    targets.push((
        format!("roomcast-moto-{latency}ms"),
        Some(format!("http://127.0.0.1:{}", proxy.port)),
    ));
    Ok((Some(proxy), targets))
}

/// A fresh emulator for one `hot-room` run, on a fresh table when on
/// DynamoDB.
fn hot_server(endpoint: Option<&str>) -> Result<Server, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let table = format!("bench-hot-{nanos}");
    let mut argv = vec!["dev", "--port", "0", "--outbound-queue", "4096"];
    if let Some(endpoint) = endpoint {
        argv.extend([
            "--dynamodb-endpoint",
            endpoint,
            "--table",
            &table,
            "--create-table",
        ]);
    }
    spawn(&argv, &NO_LIMITS)
}

/// The per-connection rate limit would throttle the load itself.
const NO_LIMITS: [(&str, &str); 3] = [
    ("ROOMCAST_RATE_PER_SEC", "1000000"),
    ("ROOMCAST_RATE_BURST", "1000000"),
    ("ROOMCAST_ABUSE_STRIKES", "1000000"),
];

/// One emulator variant: whether it is wanted, its name, its extra flags,
/// and another build to run it with (`None`: this one).
type Variant<'a> = (
    bool,
    &'static str,
    &'a [&'a str],
    Option<&'a std::path::Path>,
);

/// The variants, each of the default and in-process ones followed by its
/// run on `--baseline-exe`, when given.
fn with_baselines<'a>(
    variants: &[(bool, &'static str, &'a [&'a str])],
    args: &'a BenchArgs,
) -> Vec<Variant<'a>> {
    let mut all = Vec::new();
    for &(wanted, name, extra) in variants {
        all.push((wanted, name, extra, None));
        let baseline = match name {
            "roomcast" => "roomcast-baseline",
            "roomcast-in-process" => "roomcast-in-process-baseline",
            _ => continue,
        };
        if let Some(exe) = &args.baseline_exe {
            all.push((wanted, baseline, extra, Some(exe.as_path())));
        }
    }
    all
}

/// Targets and the pid of the process serving each (for `memory`).
type Targets = Vec<(Target, Option<u32>)>;

/// Fresh server processes for one scenario, so one scenario's backlog can
/// never leak into the next.
fn start_targets(args: &BenchArgs) -> Result<(Vec<Server>, Targets), String> {
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    match &args.url {
        Some(url) => {
            let token = args.token.clone().ok_or("--url needs --token")?;
            targets.push((
                Target::Roomcast {
                    name: "roomcast",
                    url: url.clone(),
                    tokens: Arc::new(move |_| token.clone()),
                },
                None,
            ));
        }
        None => {
            // The default emulator, and each variant asked for beside it.
            let variants: [(bool, &'static str, &[&str]); 5] = [
                (true, "roomcast", &[]),
                (
                    args.inline,
                    "roomcast-inline",
                    &["--parameter-overrides", "FanoutInlineMax=1000000"],
                ),
                (args.inspector, "roomcast-inspector", &[]),
                (
                    args.events,
                    "roomcast-events",
                    &["--parameter-overrides", "EventBusName=default"],
                ),
                (
                    args.in_process,
                    "roomcast-in-process",
                    &["--gateway", "in-process"],
                ),
            ];
            for (wanted, name, extra, exe) in with_baselines(&variants, args) {
                if !wanted {
                    continue;
                }
                let mut argv = vec!["dev", "--port", "0", "--outbound-queue", "4096"];
                argv.extend_from_slice(extra);
                let server = match exe {
                    Some(exe) => spawn_exe(exe, &argv, &NO_LIMITS)?,
                    None => spawn(&argv, &NO_LIMITS)?,
                };
                if name == "roomcast-inspector" {
                    watch_timeline(server.port);
                }
                targets.push((
                    Target::Roomcast {
                        name,
                        url: format!("ws://127.0.0.1:{}/prod", server.port),
                        tokens: dev_tokens(),
                    },
                    Some(server.child.id()),
                ));
                servers.push(server);
            }
            if let Some(endpoint) = &args.dynamodb_endpoint {
                let unchecked = args
                    .no_iam_too
                    .then_some(("roomcast-process-moto-no-iam", "process"));
                let moto = [
                    ("roomcast-moto", "in-process"),
                    ("roomcast-process-moto", "process"),
                ];
                for (name, functions) in moto.into_iter().chain(unchecked) {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    let table = format!("bench-{name}-{nanos}");
                    let mut argv = vec![
                        "dev",
                        "--port",
                        "0",
                        "--outbound-queue",
                        "4096",
                        "--dynamodb-endpoint",
                        endpoint,
                        "--table",
                        &table,
                        "--create-table",
                        "--functions",
                        functions,
                        "--cargo-profile",
                        "release",
                    ];
                    if name.ends_with("-no-iam") {
                        argv.push("--no-iam");
                    }
                    let server = spawn(&argv, &NO_LIMITS)?;
                    targets.push((
                        Target::Roomcast {
                            name,
                            url: format!("ws://127.0.0.1:{}/prod", server.port),
                            tokens: dev_tokens(),
                        },
                        Some(server.child.id()),
                    ));
                    servers.push(server);
                }
            }
        }
    }
    if !args.no_reference {
        let r = spawn(&["bench-reference"], &[])?;
        targets.push((
            Target::Reference {
                url: format!("ws://127.0.0.1:{}/", r.port),
            },
            Some(r.child.id()),
        ));
        servers.push(r);
    }
    Ok((servers, targets))
}

fn line(result: Result<serde_json::Value, bench::BenchError>, scenario: &str, target: &Target) {
    out(&match result {
        Ok(v) => v.to_string(),
        Err(e) => serde_json::json!({"scenario": scenario, "target": target.name(), "error": e.to_string()}).to_string(),
    });
}

pub(crate) async fn run(args: BenchArgs) -> Result<(), String> {
    for scenario in args.scenarios.split(',').map(str::trim) {
        if scenario == "coldstart" {
            coldstart(&args.lambda_dir).await?;
            continue;
        }
        if scenario == "lambda" {
            for r in invoke::run(args.invocations).await? {
                out(&r.to_string());
            }
            continue;
        }
        if scenario == "presence" {
            presence(&args).await?;
            continue;
        }
        if scenario == "hot-room" {
            hot_room(&args).await?;
            continue;
        }
        if scenario == "sdk-paced" {
            for r in floor::run_paced().await? {
                out(&r.to_string());
            }
            continue;
        }
        if scenario == "sdk-floor" {
            for r in floor::run(40).await? {
                out(&r.to_string());
            }
            continue;
        }
        if !matches!(scenario, "connect" | "broadcast" | "fanout" | "memory") {
            return Err(format!("unknown scenario {scenario:?}"));
        }
        // Runs that would otherwise share a server get one each.
        let runs: Vec<usize> = match scenario {
            "broadcast" => list(&args.rates),
            "fanout" => list(&args.fanout_sizes),
            _ => vec![0],
        };
        for run in runs {
            if scenario == "broadcast" {
                broadcast_rounds(&args, run as u32).await?;
                continue;
            }
            let (servers, targets) = start_targets(&args)?;
            for (target, pid) in &targets {
                match scenario {
                    "connect" => out(&bench::connect(target, args.clients, args.in_flight)
                        .await
                        .to_string()),
                    "fanout" => line(
                        bench::fanout(target, run, args.fanout_messages).await,
                        scenario,
                        target,
                    ),
                    "memory" => {
                        if let Some(pid) = pid {
                            line(
                                bench::memory(target, *pid, &list(&args.memory_counts)).await,
                                scenario,
                                target,
                            );
                        }
                    }
                    _ => {} // broadcast ran in rounds above, on servers of its own
                }
            }
            drop(servers);
        }
    }
    Ok(())
}

/// `broadcast` at `rate`: every target once per round, in turn, each round
/// on fresh servers (a room's history and message ids carry over
/// otherwise); then, over several rounds, each target's p50 and p99
/// against the in-process emulator's of the same round.
async fn broadcast_rounds(args: &BenchArgs, rate: u32) -> Result<(), String> {
    let sizes = bench::Broadcast {
        rooms: args.rooms,
        members: args.members,
        senders: args.senders,
        rate,
        count: u64::from(rate) * args.seconds,
    };
    let rounds = args.rounds.max(1);
    // Per target name: (p50, p99) of each round.
    let mut seen: Vec<(&'static str, Vec<(f64, f64)>)> = Vec::new();
    for round in 1..=rounds {
        let (servers, targets) = start_targets(args)?;
        for (target, pid) in &targets {
            let mut result = bench::broadcast(target, sizes, *pid).await;
            if let Ok(v) = &mut result {
                let p = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
                if let (Some(p50), Some(p99)) = (p("p50_ms"), p("p99_ms")) {
                    match seen.iter_mut().find(|(n, _)| *n == target.name()) {
                        Some((_, r)) => r.push((p50, p99)),
                        None => seen.push((target.name(), vec![(p50, p99)])),
                    }
                }
                if rounds > 1 {
                    v["round"] = round.into();
                }
            }
            line(result, "broadcast", target);
        }
        drop(servers);
    }
    if rounds < 2 {
        return Ok(());
    }
    let Some((_, base)) = seen.iter().find(|(n, _)| *n == "roomcast-in-process") else {
        return Ok(());
    };
    for (name, results) in seen.iter().filter(|(n, _)| *n != "roomcast-in-process") {
        if results.len() != base.len() {
            continue; // a round failed: no like-for-like ratio
        }
        let ratios = |f: fn(&(f64, f64)) -> f64| -> Vec<f64> {
            results.iter().zip(base).map(|(a, b)| f(a) / f(b)).collect()
        };
        let (p50, p99) = (ratios(|r| r.0), ratios(|r| r.1));
        out(&serde_json::json!({
            "scenario": "broadcast-ratio",
            "target": name,
            "over": "roomcast-in-process",
            "rate_per_s": rate,
            "rounds": rounds,
            "p50_ratio_median": median(&p50),
            "p99_ratio_median": median(&p99),
            "p50_ratios": p50,
            "p99_ratios": p99,
        })
        .to_string());
    }
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Each Lambda binary in `dir`, 20 runs, with the environment its template
/// gives it (HS256 secret inline, so no SSM call at init).
async fn coldstart(dir: &std::path::Path) -> Result<(), String> {
    let env: Vec<(String, String)> = [
        ("ROOMCAST_TABLE", "roomcast"),
        ("ROOMCAST_JWT_SECRET", "bench-secret"),
        ("ROOMCAST_CALLBACK_URL", "http://127.0.0.1:9/prod"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("ROOMCAST_LOG_LEVEL", "warn"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for name in roomcast_aws::in_process::BINARIES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: cargo build --profile lambda-release -p roomcast-aws --bins",
                path.display()
            ));
        }
        let r = bench::coldstart(&path, &env, 20)
            .await
            .map_err(|e| e.to_string())?;
        out(&r.to_string());
    }
    Ok(())
}

pub(crate) async fn reference(port: u16) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    out(&format!("reference broadcast server listening on {addr}"));
    reference::serve(listener).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_even_and_empty_rounds() {
        assert_eq!(median(&[2.0, 1.0, 3.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
