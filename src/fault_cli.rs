//! `roomcast fault`: the emulator's fault API from the command line
//! (docs/faults.md). Each command prints the API's JSON answer; a refusal
//! is one line with the emulator's reason.

use clap::Subcommand;

use crate::client_cli::Failure;

/// The kinds `add` takes, for its `--help` (docs/faults.md has each in
/// full).
const KINDS: &str = "\
Fault kinds (docs/faults.md):
  post-status      {\"status\": 410|413|429}: PostToConnection answers that error
  post-stall       {\"ms\": N}: PostToConnection waits N ms (at most 120000)
  drop-disconnect  $disconnect is not invoked when a connection closes
  invoke-error     an invocation fails without running the function
  invoke-timeout   an invocation runs out its timeout
  invoke-throttle  Lambda refuses the invocation (429)
  invoke-crash     {\"afterMs\": N}: the function's process is killed
  fast-clock       {\"factor\": 2-100000}: idle and maximum-duration timers run faster
  store-error      {\"error\": \"throttling\"|\"unavailable\"}: a store call fails

Each takes \"scope\" ({\"connection\", \"user\", \"function\"}), \"count\" and \"durationMs\".";

/// What to do with faults.
#[derive(Subcommand, Clone, Debug)]
pub(crate) enum FaultCommand {
    /// Add a fault, given as the API's JSON, e.g.
    /// '{"fault":"post-status","status":410,"scope":{"user":"bob"},"count":1}'.
    #[command(after_help = KINDS)]
    Add {
        /// The fault, as JSON.
        json: String,
    },
    /// List the active faults.
    List,
    /// Remove one fault by id.
    Remove {
        /// Its id (from `add` or `list`).
        id: u64,
    },
    /// Remove every fault.
    Clear,
    /// Drop a connection without a close frame, as a network failure does.
    Cut {
        /// The connection id (ids may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        connection: String,
    },
    /// Stop a function's warm instances: its next invocation starts cold
    /// (functions run as processes).
    Cold {
        /// The function's logical id or name.
        #[arg(allow_hyphen_values = true)]
        function: String,
    },
}

/// Runs one command against the emulator at `base` (`http://host:port`).
pub(crate) async fn run(base: &str, command: FaultCommand) -> Result<(), Failure> {
    let http = reqwest::Client::new();
    let url = |segments: &[&str]| -> Result<reqwest::Url, Failure> {
        let mut url = reqwest::Url::parse(base)
            .map_err(|e| Failure::Other(format!("bad URL {base}: {e}")))?;
        // Each segment escaped: an id is data, never a path.
        url.path_segments_mut()
            .map_err(|()| Failure::Other(format!("bad URL {base}")))?
            .clear()
            .push("_roomcast")
            .extend(segments);
        Ok(url)
    };
    let request = match command {
        FaultCommand::Add { json } => {
            let body: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
                Failure::Other(format!(
                    "the fault is not JSON ({e}): see `roomcast fault add --help`"
                ))
            })?;
            http.post(url(&["faults"])?).json(&body)
        }
        FaultCommand::List => http.get(url(&["faults"])?),
        FaultCommand::Remove { id } => http.delete(url(&["faults", &id.to_string()])?),
        FaultCommand::Clear => http.delete(url(&["faults"])?),
        FaultCommand::Cut { connection } => http.post(url(&["connections", &connection, "cut"])?),
        FaultCommand::Cold { function } => http.post(url(&["functions", &function, "cold"])?),
    };
    // The emulator's API takes JSON only (a web page cannot send it
    // without the emulator's consent: docs/security.md).
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach the emulator at {base} ({}): start it with `cargo run --release`, or pass --url",
                crate::endpoint::why(&e)
            ))
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Failure::Other(refusal(status, &text)));
    }
    crate::out(if text.is_empty() { "ok" } else { text.trim() });
    Ok(())
}

/// One line for a refusal: the API's `message` when it sent one (its
/// errors are `{"message": ...}`), else its text.
fn refusal(status: reqwest::StatusCode, body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    let message = message.replace('\n', " ");
    if message.is_empty() {
        format!("the emulator answered {status}")
    } else {
        format!("the emulator answered {status}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_line_with_the_apis_message() {
        let bad = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            refusal(bad, r#"{"message":"unknown fault \"nope\""}"#),
            r#"the emulator answered 400 Bad Request: unknown fault "nope""#
        );
        assert_eq!(
            refusal(reqwest::StatusCode::NOT_FOUND, "no such\nconnection"),
            "the emulator answered 404 Not Found: no such connection"
        );
        assert_eq!(refusal(bad, ""), "the emulator answered 400 Bad Request");
    }
}
