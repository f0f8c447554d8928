//! SigV4 verification (`--verify-sigv4`): `@connections` and the Invoke
//! API check signatures as AWS does (AWS General Reference, "Create a
//! signed AWS API request"), so that every client's signing is tested
//! against a verifier: the SDKs for the Management API and Lambda, and the
//! lean PostToConnection client. The emulator's functions get the same
//! credentials it verifies against (here `local`/`local`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use common::emulator::*;
use roomcast_aws::gateway::{Gateway, GatewayError};
use roomcast_aws::management::ManagementApi;
use roomcast_emulator::sigv4::Verifier;
use tokio_tungstenite::tungstenite::Message;

async fn sdk_as(key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            key, secret, None, None, "tests",
        ))
        .load()
        .await
}

#[tokio::test]
async fn signed_calls_pass_and_bad_signatures_get_awss_403() {
    let (emu, _) = probe(|c| c.verify_sigv4(Some(Verifier::new("local", "local")))).await;
    let (mut ws, id) = connected_echo(&emu, "sig").await;
    let endpoint = format!("http://{}/test", emu.addr);

    // The right credentials: the SDK and the lean client both pass.
    let good = sdk_as("local", "local").await;
    let sdk = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&good)
            .endpoint_url(&endpoint)
            .build(),
    );
    sdk.post_to_connection()
        .connection_id(&id)
        .data(Blob::new("sdk"))
        .send()
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::text("sdk"));
    let lean = ManagementApi::new(good.clone(), Some(endpoint.clone()));
    lean.gateway(&endpoint).post(&id, b"lean").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("lean"));
    sdk.get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&good)
            .endpoint_url(format!("http://{}", emu.addr))
            .build(),
    );
    let out = lambda
        .invoke()
        .function_name("AuthFn")
        .invocation_type(aws_sdk_lambda::types::InvocationType::DryRun)
        .send()
        .await;
    assert_eq!(
        out.unwrap().status_code(),
        204,
        "a signed DryRun invocation"
    );

    // A wrong secret: InvalidSignatureException, typed by both clients.
    let bad = sdk_as("local", "not-the-secret").await;
    let wrong = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&bad)
            .endpoint_url(&endpoint)
            .build(),
    );
    let err = wrong
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("never"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let lean_bad = ManagementApi::new(bad.clone(), Some(endpoint.clone()));
    let e = lean_bad
        .gateway(&endpoint)
        .post(&id, b"never")
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::Unavailable(ref m) if m.contains("InvalidSignatureException")),
        "{e:?}"
    );
    let lambda_bad = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&bad)
            .endpoint_url(format!("http://{}", emu.addr))
            .build(),
    );
    let err = lambda_bad
        .invoke()
        .function_name("AuthFn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");

    // Another access key, and no signature at all.
    let other = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk_as("someone-else", "local").await)
            .endpoint_url(&endpoint)
            .build(),
    );
    let err = other
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let unsigned = reqwest::Client::new()
        .post(format!("{endpoint}/@connections/{id}"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        unsigned.headers()["x-amzn-ErrorType"],
        "MissingAuthenticationTokenException"
    );
    // Nothing that was refused reached the client.
    silent(&mut ws, 200).await;
}
