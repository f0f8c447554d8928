//! `roomcast`: the developer CLI. With no subcommand it runs `roomcast dev`,
//! the local API Gateway emulator with the demo page.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use roomcast_emulator::template::Template;
use roomcast_emulator::{Emulator, EmulatorConfig};
use roomcast_functions::handlers::{LogFormat, init_tracing};

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
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create the table from template.yaml's definition (idempotent).
    Create {
        /// DynamoDB endpoint, e.g. http://127.0.0.1:8000 (moto, DynamoDB Local).
        #[arg(long)]
        endpoint: String,
        /// Table name.
        #[arg(long, default_value = "roomcast")]
        table: String,
        /// The SAM template holding the table resource.
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(Args, Clone)]
struct DevArgs {
    /// The SAM template to emulate.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port; 0 picks a free one.
    #[arg(long, default_value_t = 3001)]
    port: u16,
    /// Idle timeout (API Gateway: 10m), e.g. 2s, 500ms, 10m.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Maximum connection duration (API Gateway: 2h).
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    max_duration: Duration,
    /// Integration timeout (API Gateway: 29s).
    #[arg(long, default_value = "29s", value_parser = parse_duration)]
    integration_timeout: Duration,
    /// Frames queued per connection before @connections POSTs get 429.
    #[arg(long, default_value_t = 256)]
    outbound_queue: usize,
    /// Disable dev mode: no /dev/token, no dev JWT secret.
    #[arg(long)]
    no_dev: bool,
    /// Directory served at / (the demo).
    #[arg(long, default_value = "web")]
    static_dir: PathBuf,
    /// Use DynamoDB at this endpoint instead of the in-memory store.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Table name (DynamoDB mode).
    #[arg(long, default_value = "roomcast")]
    table: String,
    /// Create the table if missing (DynamoDB mode).
    #[arg(long)]
    create_table: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormatArg,
}

/// Parses `500ms`, `2s`, `10m`, `2h` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s, 10m or 2h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => return Err(format!("unknown unit {other:?}; use ms, s, m or h")),
    };
    if d.is_zero() {
        return Err("a duration must be positive".into());
    }
    Ok(d)
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dev(args: DevArgs) -> Result<(), String> {
    init_tracing(match args.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    });
    let mut config = EmulatorConfig::default()
        .addr(SocketAddr::new(args.host, args.port))
        .template(args.template)
        .idle_timeout(args.idle_timeout)
        .max_connection_duration(args.max_duration)
        .integration_timeout(args.integration_timeout)
        .outbound_queue(args.outbound_queue)
        .dev(!args.no_dev)
        .static_dir(Some(args.static_dir));
    if let Some(endpoint) = args.dynamodb_endpoint {
        config = config.dynamodb(endpoint, args.table, args.create_table);
    }
    let emulator = Emulator::bind(config).await.map_err(|e| e.to_string())?;
    let urls = emulator.urls();
    // The banner is for the person at the terminal, so it goes to stdout.
    let mut banner = format!(
        "\nRoomcast emulator listening on {}\n  WebSocket:       {}?token=JWT\n  Management API:  {}  (endpoint_url for aws-sdk-apigatewaymanagement)\n  Demo:            {}\n",
        emulator.local_addr(),
        urls.websocket,
        urls.management,
        urls.demo
    );
    if let Some(token) = &urls.dev_token {
        banner.push_str(&format!("  Dev token:       curl -s '{token}'\n"));
    }
    println!("{banner}");
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

async fn create_table(
    endpoint: &str,
    table: &str,
    template: &std::path::Path,
) -> Result<(), String> {
    let def = Template::load(template)
        .and_then(|t| t.table_definition())
        .map_err(|e| e.to_string())?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = roomcast_functions::store::dynamodb::client(&sdk, Some(endpoint));
    let created = roomcast_functions::store::dynamodb::create_table(&client, table, &def)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(table, endpoint, created, "table ready");
    Ok(())
}
