//! A connection's frame logic over channels, without TCP: the session is
//! generic over `Sink`/`Stream`, so a test plays the client with two
//! channels (as axum's `testing-websockets` example does) against a real
//! emulator state (the repository's template, memory store, in-process
//! gateway).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc as fmpsc;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::*;
use crate::apigateway::connections::{Connection, Peer};
use crate::config::EmulatorConfig;
use serde_json::Value;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

async fn state(tune: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Arc<ApiGateway> {
    let config = tune(
        EmulatorConfig::default()
            .plugin(crate::plugins::roomcast::functions())
            .template(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .in_process_gateway(true),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
    match crate::compose::build(config, addr).await {
        Ok(built) => built.server.gateway.clone(),
        Err(e) => panic!("emulator state from the repository's template: {e}"),
    }
}

/// The client's ends: what it sends, what the server wrote.
struct Client {
    send: fmpsc::UnboundedSender<Result<Message, WsError>>,
    written: fmpsc::Receiver<Message>,
}

/// A registered connection whose session runs over channels; returns the
/// client's ends and the session's outcome.
fn open(
    state: &Arc<ApiGateway>,
    sink_capacity: usize,
) -> (Client, Arc<Connection>, JoinHandle<Ending>) {
    let (send, stream) = fmpsc::unbounded();
    let (sink, written) = fmpsc::channel::<Message>(sink_capacity);
    let sink = sink.sink_map_err(|_| WsError::ConnectionClosed);
    let (tx, rx) = mpsc::channel(16);
    let peer = Peer {
        id: crate::apigateway::connections::new_connection_id(),
        connected_at_ms: state.now_ms(),
        source_ip: "127.0.0.1".into(),
        user_agent: "socket-test".into(),
        domain: "localhost".into(),
    };
    let conn = Arc::new(Connection::new(peer, tx, Value::Null));
    state.connections.insert(conn.clone());
    let (s, c) = (state.clone(), conn.clone());
    let session = tokio::spawn(async move { session(&s, &c, sink, stream, rx).await.0 });
    (Client { send, written }, conn, session)
}

async fn next_written(client: &mut Client) -> Message {
    match tokio::time::timeout(BOUND, client.written.next()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("the server closed its sending half without a frame"),
        Err(_) => panic!("nothing written within {BOUND:?}"),
    }
}

async fn ending(session: JoinHandle<Ending>) -> Ending {
    match tokio::time::timeout(BOUND, session).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => panic!("session task failed: {e}"),
        Err(_) => panic!("session still running after {BOUND:?}"),
    }
}

fn close_code(m: &Message) -> Option<u16> {
    match m {
        Message::Close(Some(f)) => Some(u16::from(f.code)),
        _ => None,
    }
}

#[tokio::test]
async fn a_client_close_is_answered_and_reported_with_its_code() {
    let state = state(|c| c).await;
    let (mut client, conn, session) = open(&state, 8);
    client
        .send
        .unbounded_send(Ok(Message::Close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        }))))
        .unwrap();
    let e = ending(session).await;
    assert_eq!(
        e,
        Ending {
            code: 4000,
            reason: "bye".into()
        }
    );
    // The reply closes the sending half (tungstenite writes the echo).
    assert!(
        tokio::time::timeout(BOUND, client.written.next())
            .await
            .unwrap()
            .is_none(),
        "nothing but the close"
    );
    assert!(
        state.connections.get(&conn.peer.id).is_none(),
        "unregistered at once"
    );
}

#[tokio::test]
async fn a_frame_from_an_unregistered_connection_gets_an_error_then_a_close() {
    let state = state(|c| c).await;
    let (mut client, _conn, session) = open(&state, 8);
    client
        .send
        .unbounded_send(Ok(Message::text(r#"{"action":"hello","ref":"r1"}"#)))
        .unwrap();
    let error = next_written(&mut client).await;
    let text = error.to_text().unwrap_or_default();
    assert!(text.contains("token_expired"), "{error:?}");
    let close = next_written(&mut client).await;
    assert_eq!(close_code(&close), Some(1000), "{close:?}");
    assert_eq!(ending(session).await.code, 1000);
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let state = state(|c| c).await;
    let (mut client, _conn, session) = open(&state, 8);
    client
        .send
        .unbounded_send(Err(WsError::Utf8("invalid".into())))
        .unwrap();
    let close = next_written(&mut client).await;
    assert_eq!(close_code(&close), Some(1007), "{close:?}");
    assert_eq!(ending(session).await.code, 1007);
}

#[tokio::test]
async fn a_vanished_client_is_reported_abnormal_without_writes() {
    let state = state(|c| c).await;
    let (client, _conn, session) = open(&state, 8);
    drop(client.send); // EOF with no close frame
    assert_eq!(
        ending(session).await,
        Ending::new(ABNORMAL),
        "a reset is 1006, as API Gateway reports it"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_going_away() {
    let state = state(|c| c.idle_timeout(Duration::from_millis(200))).await;
    let (mut client, _conn, session) = open(&state, 8);
    let close = next_written(&mut client).await;
    assert_eq!(close_code(&close), Some(1001), "{close:?}");
    assert_eq!(ending(session).await.code, 1001);
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_after_the_write_timeout() {
    let state =
        state(|c| c.write_limits(Duration::from_millis(200), Duration::from_millis(200))).await;
    // A sink of one slot that nobody drains: the second frame blocks.
    let (client, conn, session) = open(&state, 0);
    for i in 0..4 {
        let _ = state
            .connections
            .post(&conn.peer.id, format!("frame {i}").as_bytes());
    }
    assert_eq!(ending(session).await, Ending::new(ABNORMAL));
    assert!(
        state
            .metrics
            .render(0)
            .contains("roomcast_errors_total{kind=\"slow_consumer\"} 1"),
        "counted as a slow consumer"
    );
    drop(client);
}

#[test]
fn long_text_is_split_between_characters_into_frames_of_at_most_the_limit() {
    let text = "é".repeat(40_000); // 80,000 bytes, two bytes a character
    let frames = fragments(&Message::text(text.clone()), 32 * 1024).unwrap();
    assert_eq!(frames.len(), 3);
    let mut joined = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert!(f.payload().len() <= 32 * 1024);
        assert!(
            std::str::from_utf8(f.payload()).is_ok(),
            "frame {i} splits a character"
        );
        let want = if i == 0 { Data::Text } else { Data::Continue };
        assert_eq!(f.header().opcode, OpCode::Data(want));
        assert_eq!(f.header().is_final, i == frames.len() - 1);
        joined.extend_from_slice(f.payload());
    }
    assert_eq!(joined, text.as_bytes());
    assert!(fragments(&Message::text("short"), 32 * 1024).is_none());
    let binary = fragments(&Message::binary(vec![7u8; 70_000]), 32 * 1024).unwrap();
    assert_eq!(binary.len(), 3);
    assert_eq!(binary[0].header().opcode, OpCode::Data(Data::Binary));
}
