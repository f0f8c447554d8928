//! `roomcast token`, `listen` and `send`: clients of a running Roomcast
//! (the emulator by default), each with a deadline, and failures that end
//! with a distinct exit status and one line saying what to do.

use std::time::Duration;

use roomcast_client::{Client, ClientConfig, ClientError, Event, State};
use tokio::sync::mpsc::Receiver;

use crate::endpoint::Endpoint;

/// How a command failed, for its exit status (documented in the README):
/// scripts tell an emulator that is not running from a refused token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 1: anything else (a bad argument, a server error).
    Other(String),
    /// 3: nothing answered before the deadline.
    Unreachable(String),
    /// 4: the handshake was refused with 401 (no token, or one the
    /// server cannot read).
    Unauthorized(String),
    /// 5: refused with 403 (a bad or expired token, a revoked user).
    Forbidden(String),
    /// 6: the server closed the connection and asked the client to stay
    /// away (kicked or revoked while connected).
    Kicked(String),
}

impl Failure {
    /// The process's exit status.
    pub(crate) fn status(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Unreachable(_) => 3,
            Self::Unauthorized(_) => 4,
            Self::Forbidden(_) => 5,
            Self::Kicked(_) => 6,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Other(m)
            | Self::Unreachable(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::Kicked(m) => f.write_str(m),
        }
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Self::Other(m)
    }
}

/// What a client command needs: where, as whom, and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) endpoint: Endpoint,
    pub(crate) token: Option<String>,
    pub(crate) user: String,
    /// How long to wait for the server (connect, ack); `listen` waits this
    /// long for its first connection, then follows reconnects forever.
    pub(crate) deadline: Duration,
}

/// GET /dev/token on the emulator.
pub(crate) async fn dev_token(
    endpoint: &Endpoint,
    user: &str,
    name: Option<&str>,
    deadline: Duration,
) -> Result<String, Failure> {
    let base = endpoint.http_base();
    let mut url = reqwest::Url::parse(&format!("{base}/dev/token"))
        .map_err(|e| Failure::Other(format!("bad URL {base}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("user", user)
        .append_pair("name", name.unwrap_or(user));
    let response = reqwest::Client::new()
        .get(url)
        .timeout(deadline)
        .send()
        .await
        .map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach the emulator at {base} ({}): start it with `cargo run --release`, or pass --url",
                crate::endpoint::why(&e)
            ))
        })?;
    if !response.status().is_success() {
        return Err(Failure::Other(format!(
            "{base}/dev/token answered {}: is it roomcast dev without --no-dev? Pass --token otherwise",
            response.status()
        )));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| Failure::Other(format!("{base}/dev/token: {e}")))?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::Other(format!("{base}/dev/token sent no token")))
}

async fn client_for(conn: &Conn) -> Result<(Client, Receiver<Event>), Failure> {
    let token = match &conn.token {
        Some(t) => t.clone(),
        None => dev_token(&conn.endpoint, &conn.user, None, conn.deadline).await?,
    };
    Ok(Client::spawn(ClientConfig::new(
        conn.endpoint.websocket(),
        token,
    )))
}

/// What an event means for a command waiting on the server: the failure
/// it ends with, if it ends the command. `last` keeps why the connection
/// was last lost, for the unreachable message.
fn fatal(event: &Event, last: &mut String) -> Option<Failure> {
    match event {
        Event::Error(ClientError::Unauthorized(401)) => Some(Failure::Unauthorized(
            "the server refused the token (401): pass a token with --token (or ROOMCAST_TOKEN)"
                .into(),
        )),
        Event::Error(ClientError::Unauthorized(status)) => Some(Failure::Forbidden(format!(
            "the server refused the token ({status}): it is invalid or expired, or the user is revoked"
        ))),
        Event::Error(ClientError::Kicked { code, reason }) => Some(Failure::Kicked(format!(
            "closed by the server ({code}): {reason}"
        ))),
        Event::State(State::Reconnecting { reason, .. }) => {
            last.clone_from(reason);
            None
        }
        Event::State(State::Closed { reason }) => Some(Failure::Other(format!("closed: {reason}"))),
        _ => None,
    }
}

/// The failure among the events already reported, if any.
fn stopped(events: &mut Receiver<Event>, last: &mut String) -> Option<Failure> {
    let mut found = None;
    while let Ok(event) = events.try_recv() {
        if let Some(f) = fatal(&event, last) {
            // The first says why; `Closed` follows every one of them.
            found.get_or_insert(f);
        }
    }
    found
}

fn unreachable(conn: &Conn, last: &str) -> Failure {
    let why = if last.is_empty() {
        String::new()
    } else {
        format!(" (last: {last})")
    };
    Failure::Unreachable(format!(
        "no answer from {} within {:?}{why}: is roomcast dev running? (--url, --timeout)",
        conn.endpoint.websocket(),
        conn.deadline
    ))
}

/// `send`: one message, its ack printed.
pub(crate) async fn send(
    room: &str,
    data: &str,
    id: Option<String>,
    conn: Conn,
) -> Result<(), Failure> {
    let data: serde_json::Value = serde_json::from_str(data)
        .map_err(|e| Failure::Other(format!("--data is not JSON: {e}")))?;
    let (client, mut events) = client_for(&conn).await?;
    let ack = async {
        match id {
            Some(id) => client.send_with_id(room, &id, data).await,
            None => client.send(room, data).await,
        }
    };
    tokio::pin!(ack);
    let deadline = tokio::time::sleep(conn.deadline);
    tokio::pin!(deadline);
    let mut last = String::new();
    let outcome = loop {
        tokio::select! {
            result = &mut ack => break result.map_err(|e| match e {
                ClientError::Server { code, message } => Failure::Other(format!("refused ({code}): {message}")),
                // The client stopped: why is in its events, sent before
                // it failed the send.
                other => stopped(&mut events, &mut last).unwrap_or_else(|| Failure::Other(other.to_string())),
            }),
            Some(event) = events.recv() => {
                if let Some(f) = fatal(&event, &mut last) {
                    break Err(f);
                }
            }
            () = &mut deadline => break Err(unreachable(&conn, &last)),
        }
    };
    let ack = match outcome {
        Ok(ack) => ack,
        Err(f) => {
            close(&client, &mut events).await;
            return Err(f);
        }
    };
    crate::out(
        &serde_json::json!({"id": ack.id, "seq": ack.seq, "duplicate": ack.duplicate}).to_string(),
    );
    close(&client, &mut events).await;
    Ok(())
}

/// `listen`: messages as JSON lines until interrupted; reconnects and
/// resumes by itself once it has connected.
pub(crate) async fn listen(room: &str, conn: Conn) -> Result<(), Failure> {
    let (client, mut events) = client_for(&conn).await?;
    client
        .join(room)
        .await
        .map_err(|e| Failure::Other(e.to_string()))?;
    // Armed once: a signal between two events is not lost.
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    let first = tokio::time::sleep(conn.deadline);
    tokio::pin!(first);
    let mut connected = false;
    let mut last = String::new();
    loop {
        tokio::select! {
            () = &mut stop => {
                close(&client, &mut events).await;
                return Ok(());
            }
            () = &mut first, if !connected => {
                close(&client, &mut events).await;
                return Err(unreachable(&conn, &last));
            }
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                if let Some(f) = fatal(&event, &mut last) {
                    return Err(f);
                }
                match event {
                    Event::Message(m) => crate::out(&m.to_string()),
                    Event::State(State::Open { .. }) => connected = true,
                    Event::State(state) => tracing::info!(?state, "connection"),
                    Event::Joined { room, missed, truncated } => tracing::info!(%room, missed, truncated, "joined"),
                    Event::Error(e) => tracing::warn!(error = %e, "client error"),
                    Event::Restarted { room, epoch } => tracing::warn!(%room, %epoch, "the room's stream started again; its messages follow from seq 1"),
                    Event::Frame(_) => {}
                }
            }
        }
    }
}

/// Closes with a close frame and waits (briefly) for the client to say it
/// has: the server sees a normal close (1000), not a dropped socket.
async fn close(client: &Client, events: &mut Receiver<Event>) {
    client.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(e) = events.recv().await {
            if matches!(e, Event::State(State::Closed { .. })) {
                return;
            }
        }
    })
    .await;
}
