//! `roomcast`: the developer CLI. With no subcommand it runs `roomcast dev`,
//! the local API Gateway emulator with the demo page.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use roomcast_aws::handlers::{LogFormat, init_tracing};
use roomcast_emulator::cli_values::duration as parse_duration;
use roomcast_emulator::template::Template;
use roomcast_emulator::{Emulator, EmulatorConfig};

// The emulator's hot path (a signed HTTP round trip per delivery) is
// allocation-bound; glibc malloc's arena locking and consolidation were a
// fifth of its CPU in the profile (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "roomcast",
    version,
    about = "Roomcast developer CLI: local emulator, tables, clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    dev: DevArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local API Gateway WebSocket emulator with the demo (default).
    Dev(DevArgs),
    /// Manage the DynamoDB table.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Install the AWS SDK packages that Lambda's Node.js and Python
    /// runtimes include, for every function of a template that imports
    /// them (the emulator does this at start-up; this does it ahead, e.g.
    /// before going offline).
    Runtimes {
        #[command(subcommand)]
        command: RuntimesCommand,
    },
    /// Print room messages as JSON lines (reconnects and resumes by itself).
    Listen {
        /// The room.
        #[arg(long)]
        room: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Send one message to a room and print the ack.
    Send {
        /// The room.
        #[arg(long)]
        room: String,
        /// The payload, as JSON.
        #[arg(long)]
        data: String,
        /// Client message id (retries with the same id are not duplicated).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Load-test Roomcast (default: a local emulator it starts) side by side
    /// with a minimal tokio-tungstenite broadcast server; one JSON line per
    /// scenario and target.
    Bench(BenchArgs),
    /// The reference broadcast server used by `bench` (runs until killed).
    #[command(hide = true)]
    BenchReference {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// A TCP proxy that adds a round-trip latency to a local store (moto),
    /// so contention shows as it would against DynamoDB (runs until killed;
    /// prints "listening on 127.0.0.1:PORT").
    LatencyProxy {
        /// Where to forward, HOST:PORT (or an http:// URL).
        #[arg(long)]
        upstream: String,
        /// Round-trip latency to add, milliseconds (half each way).
        #[arg(long, default_value_t = 5)]
        latency_ms: u64,
        /// Port to listen on (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Print every event a running emulator's EventBridge accepts, one
    /// JSON object per line (runs until the emulator stops).
    Events {
        /// The emulator (its WebSocket or HTTP URL).
        #[arg(long, env = "ROOMCAST_URL", default_value = endpoint::DEFAULT)]
        url: endpoint::Endpoint,
        /// Only events this EventBridge event pattern (JSON) matches.
        #[arg(long)]
        filter: Option<String>,
        /// Also POST each event to this URL, as a webhook would.
        #[arg(long)]
        forward: Option<String>,
    },
    /// Inject failures into a running emulator: PostToConnection statuses
    /// and stalls, dropped `$disconnect`s, cut connections, failing or
    /// timing-out invocations (docs/faults.md).
    Fault {
        /// The emulator (its WebSocket or HTTP URL).
        #[arg(long, env = "ROOMCAST_URL", default_value = endpoint::DEFAULT, global = true)]
        url: endpoint::Endpoint,
        #[command(subcommand)]
        command: fault_cli::FaultCommand,
    },
    /// Print a development token from the local emulator.
    Token {
        /// User id.
        #[arg(long)]
        user: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// The emulator (its WebSocket or HTTP URL; its host serves
        /// /dev/token).
        #[arg(long, env = "ROOMCAST_URL", default_value = endpoint::DEFAULT)]
        url: endpoint::Endpoint,
    },
}

#[derive(Args, Clone)]
struct BenchArgs {
    /// Scenarios, comma-separated: connect, broadcast, fanout, memory,
    /// coldstart, sdk-floor (the cost of one PostToConnection through the
    /// SDK against a do-nothing server, beside plain HTTP), sdk-paced (one
    /// fan-out of 100 at 2 and at 50 per second, the same three ways),
    /// presence (filling a presence room, with the roster cap and without),
    /// hot-room (many senders into one room, closed and open loop, checked
    /// for loss, duplicates and order by a listener),
    /// lambda (one
    /// invocation through the Invoke API, in process against as a process
    /// behind the Runtime API).
    #[arg(long, default_value = "connect,broadcast,fanout,memory")]
    scenarios: String,
    /// Clients for `connect`.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Handshakes in flight for `connect`.
    #[arg(long, default_value_t = 50)]
    in_flight: usize,
    /// Rooms for `broadcast`.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Receivers per room for `broadcast`.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Senders per room for `broadcast`.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages per second per sender for `broadcast` (comma-separated runs).
    #[arg(long, default_value = "50,500")]
    rates: String,
    /// Duration of each `broadcast` run, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds of each `broadcast` run: every target once per round, in
    /// turn, on fresh servers. With more than one, each line carries
    /// its round, and with `--in-process` a `broadcast-ratio` line per
    /// target and rate gives its p50 and p99 over the in-process
    /// emulator's in the same round, and their medians over the rounds
    /// (a slow spell of a shared machine then moves one round, not the
    /// comparison).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Room sizes for `fanout`.
    #[arg(long, default_value = "10,100,1000,10000")]
    fanout_sizes: String,
    /// Messages per room size for `fanout`, one at a time (the ack's p99
    /// wants 100 or more).
    #[arg(long, default_value_t = 5)]
    fanout_messages: u64,
    /// Room sizes for `presence` (a room filled by members who all hold
    /// the presence right, with the roster cap and without it).
    #[arg(long, default_value = "1000,10000")]
    presence_sizes: String,
    /// Longest a `presence` fill may run before it stops and reports how
    /// far it got, seconds.
    #[arg(long, default_value_t = 60)]
    presence_seconds: u64,
    /// Idle connection counts for `memory`.
    #[arg(long, default_value = "1000,10000")]
    memory_counts: String,
    /// Bench this Roomcast URL instead of starting an emulator (memory is then skipped).
    #[arg(long)]
    url: Option<String>,
    /// Token for `--url` (every connection uses it).
    #[arg(long, env = "ROOMCAST_TOKEN")]
    token: Option<String>,
    /// Skip the reference server.
    #[arg(long)]
    no_reference: bool,
    /// Also bench an emulator using the in-process gateway.
    #[arg(long)]
    in_process: bool,
    /// Another build of `roomcast` (the commit before a change, built to a
    /// copy): its emulators run beside this build's, as
    /// `roomcast-baseline` and `roomcast-in-process-baseline`, so the two
    /// are compared side by side in one run.
    #[arg(long, value_name = "PATH")]
    baseline_exe: Option<std::path::PathBuf>,
    /// Also bench an emulator with its inspector open: a reader of the
    /// live timeline attached for the whole run (frames and posts are then
    /// recorded), beside the default, which nobody inspects.
    #[arg(long)]
    inspector: bool,
    /// Also bench an emulator with events on (`EventBusName=default`:
    /// every function puts its events on the emulator's EventBridge),
    /// beside the default, which has events off.
    #[arg(long)]
    events: bool,
    /// Also bench an emulator that fans out every room inline
    /// (`FanoutInlineMax` at its maximum), beside the default, which hands
    /// rooms over 500 members to the fanout function in shards.
    #[arg(long)]
    inline: bool,
    /// Also bench two emulators on this DynamoDB endpoint (moto): Roomcast's
    /// functions in process, and each as its release binary behind the
    /// Runtime API (`cargo build --release -p roomcast-aws --bins` first).
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// With `--dynamodb-endpoint`: also bench the process functions with
    /// their roles unchecked (`--no-iam`), beside the default, where every
    /// AWS call they make is checked against their role.
    #[arg(long)]
    no_iam_too: bool,
    /// Invocations per mode for `lambda`.
    #[arg(long, default_value_t = 500)]
    invocations: usize,
    /// Sender counts for `hot-room` (needs `--dynamodb-endpoint` for the
    /// DynamoDB rows; the memory store runs regardless).
    #[arg(long, default_value = "1,4,16,64")]
    hot_senders: String,
    /// `hot-room` targets, comma-separated: memory (the embedded store),
    /// moto, moto-latency (moto behind the latency model); the last two
    /// need `--dynamodb-endpoint`.
    #[arg(long, default_value = "memory,moto,moto-latency")]
    hot_targets: String,
    /// How long each `hot-room` run sends, seconds.
    #[arg(long, default_value_t = 10)]
    hot_seconds: u64,
    /// Round-trip latency the `hot-room` latency model adds to every
    /// DynamoDB request (a proxy in front of moto), milliseconds.
    #[arg(long, default_value_t = 5)]
    hot_latency_ms: u64,
    /// Total rate of the `hot-room` open-loop runs, messages per second,
    /// split evenly over the senders. Default: half of what one
    /// closed-loop sender achieved on the same target.
    #[arg(long)]
    hot_open_total: Option<f64>,
    /// Where the Lambda binaries as deployed are, for `coldstart` (the
    /// `lambda-release` profile: fat LTO, one codegen unit).
    #[arg(long, default_value = "target/lambda-release")]
    lambda_dir: PathBuf,
}

#[derive(Args, Clone)]
struct ConnArgs {
    /// Where Roomcast is: a WebSocket URL with the stage
    /// (ws://127.0.0.1:3001/prod), or an http:// one.
    #[arg(long, env = "ROOMCAST_URL", default_value = endpoint::DEFAULT)]
    url: endpoint::Endpoint,
    /// JWT; without it a dev token is fetched from the emulator.
    #[arg(long, env = "ROOMCAST_TOKEN")]
    token: Option<String>,
    /// User for the dev token.
    #[arg(long, default_value = "cli")]
    user: String,
    /// How long to wait for the server (500ms, 10s, 1m): then the command
    /// gives up, with exit status 3.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

impl ConnArgs {
    fn conn(self) -> client_cli::Conn {
        client_cli::Conn {
            endpoint: self.url,
            token: self.token,
            user: self.user,
            deadline: self.timeout,
        }
    }
}

#[derive(Subcommand)]
enum RuntimesCommand {
    /// Install what the template's Node.js and Python functions import.
    Install {
        /// The SAM template.
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        /// The Python interpreter python3.x functions run with.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// The cache directory.
        #[arg(long, env = "ROOMCAST_CACHE_DIR", default_value_os_t = roomcast_emulator::lambda::runtime_sdk::default_cache_dir())]
        cache_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create every `AWS::DynamoDB::Table` of the template, with its keys,
    /// indexes, TTL and stream (idempotent: existing tables are left).
    Create {
        /// DynamoDB endpoint, e.g. http://127.0.0.1:8000 (moto, DynamoDB Local).
        #[arg(long)]
        endpoint: String,
        /// The name of Roomcast's table (the one its functions get as
        /// `ROOMCAST_TABLE`); other tables keep the template's names.
        #[arg(long, default_value = "roomcast")]
        table: String,
        /// The SAM template holding the table resources.
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

/// `roomcast dev`: the emulator's own option groups, flattened, so each
/// flag is written once, where its service keeps its default.
#[derive(Args, Clone)]
struct DevArgs {
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormatArg,
    #[command(flatten)]
    config: EmulatorConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => dev(cli.dev).await,
        Some(Command::Dev(args)) => dev(args).await,
        Some(Command::Table {
            command:
                TableCommand::Create {
                    endpoint,
                    table,
                    template,
                },
        }) => {
            init_tracing(LogFormat::Human);
            create_table(&endpoint, &table, &template).await
        }
        Some(Command::Runtimes {
            command:
                RuntimesCommand::Install {
                    template,
                    python,
                    cache_dir,
                },
        }) => {
            init_tracing(LogFormat::Human);
            install_runtimes(&template, &python, &cache_dir).await
        }
        Some(Command::Token { user, name, url }) => {
            return finish(
                client_cli::dev_token(&url, &user, name.as_deref(), Duration::from_secs(10))
                    .await
                    .map(|t| out(&t)),
            );
        }
        Some(Command::Listen { room, conn }) => {
            init_tracing(LogFormat::Human);
            return finish(client_cli::listen(&room, conn.conn()).await);
        }
        Some(Command::Send {
            room,
            data,
            id,
            conn,
        }) => return finish(client_cli::send(&room, &data, id, conn.conn()).await),
        Some(Command::Events {
            url,
            filter,
            forward,
        }) => {
            init_tracing(LogFormat::Human);
            return finish(
                events_cli::run(events_cli::Tail {
                    url: url.http_base(),
                    filter,
                    forward,
                })
                .await,
            );
        }
        Some(Command::Fault { url, command }) => {
            return finish(fault_cli::run(&url.http_base(), command).await);
        }
        Some(Command::Bench(args)) => bench::run(args).await,
        Some(Command::BenchReference { port }) => bench::reference(port).await,
        Some(Command::LatencyProxy {
            upstream,
            latency_ms,
            port,
        }) => latency_proxy(&upstream, latency_ms, port).await,
    };
    finish(result.map_err(client_cli::Failure::Other))
}

/// The exit status, and the one line that says why on failure.
fn finish(result: Result<(), client_cli::Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast: {e}");
            ExitCode::from(e.status())
        }
    }
}

async fn dev(args: DevArgs) -> Result<(), String> {
    init_tracing(match args.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    });
    // Roomcast's own functions run in the emulator's process (unless
    // --functions process): the plug-in is handed in here.
    let config = args
        .config
        .plugin(roomcast_emulator::plugins::roomcast::functions());
    let emulator = Emulator::bind(config).await.map_err(|e| e.to_string())?;
    let urls = emulator.urls();
    // The banner is for the person at the terminal, so it goes to stdout.
    out(&banner::banner(emulator.local_addr(), &urls));
    emulator.run_until(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

mod banner;
mod bench;
mod client_cli;
mod endpoint;
mod events_cli;
mod fault_cli;
mod latency_proxy;

/// `latency-proxy`: serves until killed.
async fn latency_proxy(upstream: &str, latency_ms: u64, port: u16) -> Result<(), String> {
    init_tracing(LogFormat::Human);
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    out(&format!(
        "latency proxy listening on {addr} (to {upstream}, {latency_ms} ms round trips)"
    ));
    latency_proxy::serve(
        listener,
        upstream,
        std::time::Duration::from_millis(latency_ms),
    )
    .await;
    Ok(())
}

/// Writes one line of command output (the product of `listen`, `send`,
/// `token`; logs go through tracing to stderr).
fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// `roomcast runtimes install`.
async fn install_runtimes(
    template: &std::path::Path,
    python: &std::path::Path,
    cache: &std::path::Path,
) -> Result<(), String> {
    let t = Template::load(template).map_err(|e| e.to_string())?;
    let project = template.parent().unwrap_or(std::path::Path::new("."));
    for spec in t.functions().map_err(|e| e.to_string())? {
        let root = project.join(&spec.code_uri);
        let env = roomcast_emulator::lambda::runtime_sdk::provide(&spec, &root, cache, python)
            .await
            .map_err(|e| e.to_string())?;
        out(
            &serde_json::json!({"function": spec.logical_id, "runtime": spec.runtime, "env": env})
                .to_string(),
        );
    }
    Ok(())
}

/// `roomcast table create`: every table of the template, Roomcast's under
/// `table`, the others under the names the template gives them.
async fn create_table(
    endpoint: &str,
    table: &str,
    template: &std::path::Path,
) -> Result<(), String> {
    let tables = Template::load(template)
        .map(|t| t.with_table_name(table))
        .and_then(|t| t.tables())
        .map_err(|e| e.to_string())?;
    // A local endpoint takes any credentials: default them (and the
    // region) as `dev` does, rather than asking IMDS.
    let sdk = roomcast_emulator::local_sdk_config().await;
    let client = roomcast_aws::dynamodb::client(&sdk, Some(endpoint));
    for t in tables {
        let created = roomcast_aws::dynamodb::create_table(&client, &t.name, &t.definition)
            .await
            .map_err(|e| format!("cannot create table {} at {endpoint}: {e}", t.name))?;
        tracing::info!(table = %t.name, logical_id = %t.logical_id, endpoint, created, "table ready");
    }
    Ok(())
}
