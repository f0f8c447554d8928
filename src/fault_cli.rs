//! `roomcast fault`: the emulator's fault API from the command line
//! (docs/faults.md). Each command prints the API's JSON answer.

use clap::Subcommand;

/// What to do with faults.
#[derive(Subcommand, Clone, Debug)]
pub(crate) enum FaultCommand {
    /// Add a fault, given as the API's JSON, e.g.
    /// '{"fault":"post-status","status":410,"scope":{"user":"bob"},"count":1}'.
    Add {
        /// The fault.
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
        /// The connection id.
        connection: String,
    },
}

/// Runs one command against the emulator at `url`.
pub(crate) async fn run(url: &str, command: FaultCommand) -> Result<(), String> {
    let base = url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let faults = format!("{base}/_roomcast/faults");
    let request = match command {
        FaultCommand::Add { json } => {
            let body: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| format!("the fault is not JSON: {e}"))?;
            http.post(&faults).json(&body)
        }
        FaultCommand::List => http.get(&faults),
        FaultCommand::Remove { id } => http.delete(format!("{faults}/{id}")),
        FaultCommand::Clear => http.delete(&faults),
        FaultCommand::Cut { connection } => {
            http.post(format!("{base}/_roomcast/connections/{connection}/cut"))
        }
    };
    // The emulator's API takes JSON only (a web page cannot send it
    // without the emulator's consent: docs/security.md).
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot reach the emulator at {base}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{status}: {}", text.trim()));
    }
    crate::out(if text.is_empty() { "ok" } else { text.trim() });
    Ok(())
}
