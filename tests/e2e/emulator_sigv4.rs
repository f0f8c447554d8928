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

/// How a hand-made signature is made (AWS General Reference, "Create a
/// signed AWS API request"), with the knobs an attacker or a broken
/// client would turn.
struct Signing {
    service: &'static str,
    region: &'static str,
    /// What the canonical request's payload line says.
    payload_hash: String,
    /// `x-amz-content-sha256`, sent and signed when given.
    content_sha: Option<String>,
    sign_host: bool,
}

impl Signing {
    fn honest(body: &[u8]) -> Self {
        Self {
            service: "execute-api",
            region: "us-east-1",
            payload_hash: roomcast_aws::sigv4::sha256_hex(body),
            content_sha: None,
            sign_host: true,
        }
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` for now (civil date from days since the epoch).
fn amz_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A POST of `body` to `path` on the emulator, signed as `s` says with
/// `local`/`local`; the status and `x-amzn-ErrorType`.
async fn signed_post(
    emu: &roomcast_emulator::RunningEmulator,
    path: &str,
    body: &'static [u8],
    s: &Signing,
) -> (u16, String) {
    use roomcast_aws::sigv4::{sha256_hex, uri_encode};
    let host = emu.addr.to_string();
    let date = amz_date();
    let canonical_path: Vec<String> = path.split('/').map(uri_encode).collect();
    let mut headers = Vec::new();
    if s.sign_host {
        headers.push(("host", host.clone()));
    }
    if let Some(sha) = &s.content_sha {
        headers.push(("x-amz-content-sha256", sha.clone()));
    }
    headers.push(("x-amz-date", date.clone()));
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let mut canonical = format!("POST\n{}\n\n", canonical_path.join("/"));
    for (k, v) in &headers {
        canonical.push_str(&format!("{k}:{v}\n"));
    }
    canonical.push_str(&format!("\n{signed}\n{}", s.payload_hash));
    let scope = format!("{}/{}/{}/aws4_request", &date[..8], s.region, s.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = aws_sigv4::sign::v4::generate_signing_key(
        "local",
        std::time::SystemTime::now(),
        s.region,
        s.service,
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(key, to_sign.as_bytes());
    let mut request = reqwest::Client::new()
        .post(format!("http://{host}{path}"))
        .header("x-amz-date", &date)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=local/{scope}, SignedHeaders={signed}, Signature={signature}"),
        )
        .body(body);
    if let Some(sha) = &s.content_sha {
        request = request.header("x-amz-content-sha256", sha);
    }
    let r = request.send().await.unwrap();
    let kind = r
        .headers()
        .get("x-amzn-ErrorType")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), kind)
}

/// SigV4 as AWS checks it for these services: the payload's hash is the
/// body's ("HashedPayload = Lowercase(HexEncode(Hash(requestPayload)))"),
/// so neither a captured request replayed with another body under its old
/// `x-amz-content-sha256`, nor `UNSIGNED-PAYLOAD` (S3's alone), verifies;
/// `host` must be signed; the scope must name the endpoint's service and
/// region. Each of these verified before.
#[tokio::test]
async fn signatures_bind_the_body_the_host_the_service_and_the_region() {
    let (emu, _) = probe(|c| c.verify_sigv4(Some(Verifier::new("local", "local")))).await;
    let (mut ws, id) = connected_echo(&emu, "sig").await;
    let path = format!("/test/@connections/{}", id.replace('=', "%3D"));
    let path: &'static str = Box::leak(path.into_boxed_str());
    // The hand-made signer is right: an honest request passes.
    let (status, _) = signed_post(&emu, path, b"honest", &Signing::honest(b"honest")).await;
    assert_eq!(status, 200);
    assert_eq!(next(&mut ws).await, Message::text("honest"));
    // Captured with the hash of "honest", replayed with another body.
    let mut captured = Signing::honest(b"honest");
    captured.content_sha = Some(roomcast_aws::sigv4::sha256_hex(b"honest"));
    let (status, kind) = signed_post(&emu, path, b"forged", &captured).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    let unsigned = Signing {
        payload_hash: "UNSIGNED-PAYLOAD".into(),
        content_sha: Some("UNSIGNED-PAYLOAD".into()),
        ..Signing::honest(b"")
    };
    let (status, kind) = signed_post(&emu, path, b"anything", &unsigned).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    let hostless = Signing {
        sign_host: false,
        ..Signing::honest(b"x")
    };
    let (status, kind) = signed_post(&emu, path, b"x", &hostless).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "IncompleteSignatureException")
    );
    for (service, region) in [
        ("s3", "us-east-1"),
        ("lambda", "us-east-1"),
        ("execute-api", "eu-west-1"),
    ] {
        let scoped = Signing {
            service,
            region,
            ..Signing::honest(b"x")
        };
        let (status, kind) = signed_post(&emu, path, b"x", &scoped).await;
        assert_eq!(
            (status, kind.as_str()),
            (403, "InvalidSignatureException"),
            "{service} {region}"
        );
    }
    // None of the refused posts reached the client.
    silent(&mut ws, 200).await;
}
