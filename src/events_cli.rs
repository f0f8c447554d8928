//! `roomcast events`: every event a running emulator's EventBridge accepts,
//! as JSON lines on stdout, optionally filtered by an event pattern (the
//! emulator's own matcher) and forwarded to a local URL as webhooks.

use roomcast_emulator::eventbridge::pattern::Pattern;

use crate::client_cli::Failure;

/// What to do with each event.
pub(crate) struct Tail {
    /// The emulator's base URL (`http://127.0.0.1:3001`).
    pub(crate) url: String,
    /// Only events this pattern matches.
    pub(crate) filter: Option<String>,
    /// POST each event here too.
    pub(crate) forward: Option<String>,
}

/// Reads the feed until the emulator goes away.
pub(crate) async fn run(tail: Tail) -> Result<(), Failure> {
    let filter = tail
        .filter
        .as_deref()
        .map(Pattern::parse_str)
        .transpose()
        .map_err(|e| Failure::Other(format!("--filter: {e}")))?;
    let base = tail.url.trim_end_matches('/');
    let http = reqwest::Client::new();
    events_on(&http, base).await?;
    let mut response = http
        .get(format!("{base}/_roomcast/events"))
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?;
    if !response.status().is_success() {
        return Err(Failure::Other(format!(
            "{base}/_roomcast/events answered {}: is this roomcast dev?",
            response.status()
        )));
    }
    tracing::info!(url = %base, "reading events");
    let mut pending = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Other(format!("the feed broke: {e}")))?
    {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            handle(&http, &tail, filter.as_ref(), &line[..end]).await;
        }
    }
    tracing::info!("the emulator closed the feed");
    Ok(())
}

fn unreachable(base: &str, e: &reqwest::Error) -> Failure {
    Failure::Unreachable(format!(
        "cannot reach the emulator at {base} ({}): start it with `cargo run --release`, or pass --url",
        crate::endpoint::why(e)
    ))
}

/// Refuses to wait on Roomcast's own template with its events off: no
/// event would ever come.
async fn events_on(http: &reqwest::Client, base: &str) -> Result<(), Failure> {
    let info: serde_json::Value = http
        .get(format!("{base}/_roomcast/info"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?
        .json()
        .await
        .map_err(|e| {
            Failure::Other(format!("{base}/_roomcast/info: {e}: is this roomcast dev?"))
        })?;
    if info["template"] == "roomcast" && info["roomcastEvents"] == false {
        return Err(Failure::Other(format!(
            "Roomcast's events are off in the emulator at {base}: restart it with --parameter-overrides EventBusName=default"
        )));
    }
    Ok(())
}

async fn handle(http: &reqwest::Client, tail: &Tail, filter: Option<&Pattern>, line: &[u8]) {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
        tracing::warn!("the feed sent a line that is not JSON; skipped");
        return;
    };
    if let Some(n) = event.get("skipped") {
        tracing::warn!(skipped = %n, "this reader fell behind; events were skipped");
        return;
    }
    if filter.is_some_and(|p| !p.matches(&event)) {
        return;
    }
    crate::out(&event.to_string());
    let Some(url) = &tail.forward else { return };
    match http.post(url).json(&event).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            tracing::warn!(url, status = %r.status(), id = %event["id"], "forward refused")
        }
        Err(e) => tracing::warn!(url, error = %e, id = %event["id"], "forward failed"),
    }
}
