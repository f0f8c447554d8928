//! TLS on the emulator's port: `https://{domainName}/{stage}` callbacks,
//! written as API Gateway Developer Guide, "Use @connections commands in
//! your backend service" writes them, reach `@connections` through the
//! real Rust SDK when it trusts the emulator's local CA (the Node and
//! Python SDKs do so in `examples`); plain HTTP keeps working on the same
//! port; and hostile TLS clients leave the server healthy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use common::emulator::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// An SDK client for `endpoint` that trusts only `ca_pem`, if given, and
/// otherwise only the system's roots.
async fn management_trusting(
    endpoint: &str,
    ca_pem: Option<Vec<u8>>,
) -> aws_sdk_apigatewaymanagement::Client {
    let trust = match ca_pem {
        Some(pem) => TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(pem),
        None => TrustStore::default(),
    };
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let sdk = common::sdk().await;
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .http_client(http)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

#[tokio::test]
async fn the_rust_sdk_posts_over_tls_to_the_domain_name_and_over_plain_http() {
    let (emu, _) = probe(|c| c).await;
    let (mut ws, id) = connected_echo(&emu, "tls").await;
    let ca = std::fs::read(cache_dir().join("tls").join("ca.pem")).expect("the local CA");
    // The callback as a function builds it from its event: the event's
    // domainName is the host the client connected to.
    let https = format!("https://{}/test", emu.addr);
    let api = management_trusting(&https, Some(ca)).await;
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new("over tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::text("over tls"));
    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(info.connected_at().is_some());
    // The same port, plain.
    let plain = management(&format!("http://{}/test", emu.addr)).await;
    plain
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::text("plain"));
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_local_ca_is_refused() {
    let (emu, _) = probe(|c| c).await;
    let (mut ws, id) = connected_echo(&emu, "tls").await;
    let api = management_trusting(&format!("https://{}/test", emu.addr), None).await;
    let err = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("never"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            aws_sdk_apigatewaymanagement::error::SdkError::DispatchFailure(_)
        ),
        "the certificate is checked: {err:?}"
    );
    silent(&mut ws, 200).await;
}

#[tokio::test]
async fn half_sent_and_garbage_tls_hellos_are_dropped_and_the_server_stays_healthy() {
    let (emu, _) = probe(|c| c.handshake_limits(Duration::from_millis(700), 8)).await;
    // The first byte of a TLS record and nothing more, 20 times: each is
    // held at most for the header-read timeout, like a half-sent request.
    let mut partial = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(emu.addr).await.unwrap();
        tcp.write_all(&[0x16]).await.unwrap();
        partial.push(tcp);
    }
    // A handshake record of junk: refused at once.
    let mut junk = TcpStream::connect(emu.addr).await.unwrap();
    junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(WAIT, junk.read(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a junk handshake was still held after {WAIT:?}"
    );
    let (mut ws, _) = connected_echo(&emu, "tls").await;
    send(&mut ws, json!({"action": "echo"})).await;
    assert_eq!(recv(&mut ws).await["requestContext"]["routeKey"], "echo");
    for tcp in &mut partial {
        let read = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await;
        assert!(
            read.is_ok(),
            "a half-sent TLS hello was still held after {WAIT:?}"
        );
    }
}
