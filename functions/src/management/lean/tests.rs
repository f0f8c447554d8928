use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::*;

/// What `aws-sigv4`'s own request signer produces for the same request:
/// the oracle the cached-key signer must match byte for byte.
fn reference(
    creds: &Credentials,
    host: &str,
    path: &str,
    payload: &[u8],
    time: SystemTime,
) -> (String, Option<String>) {
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("https://{host}{path}");
    let request = SignableRequest::new(
        "POST",
        &url,
        std::iter::once(("host", host)),
        SignableBody::Bytes(payload),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut auth = None;
    let mut token = None;
    for (name, value) in instructions.headers() {
        match name {
            "authorization" => auth = Some(value.to_owned()),
            "x-amz-security-token" => token = Some(value.to_owned()),
            _ => {}
        }
    }
    (auth.unwrap(), token)
}

fn lean(creds: Credentials, endpoint: &str) -> LeanPost {
    LeanPost::new(
        endpoint,
        Some(tls()),
        Settings::default(),
        "eu-west-1".into(),
        SharedCredentialsProvider::new(creds),
        Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn the_cached_key_signature_is_aws_sigv4s_own() {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    for token in [None, Some("session-token/with+odd=chars")] {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            token.map(str::to_owned),
            None,
            "test",
        );
        let post = lean(
            creds.clone(),
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        );
        // Each payload twice in a row, then another: the cached payload
        // hash is used only for the same bytes.
        let payloads: [&[u8]; 4] = [
            br#"{"type":"message","data":"h\u00e9llo"}"#,
            br#"{"type":"message","data":"h\u00e9llo"}"#,
            b"",
            br#"{"type":"message","data":"h\u00e9llo!"}"#,
        ];
        for id in ["L0SM9cOFvHcCIhw=", "a-b_c.d~e", "x+y/z==", "ünï"] {
            for payload in payloads {
                let target = post.target(id);
                assert_eq!(target.path, format!("/prod/@connections/{}", encode(id)));
                let signed = post.sign(&target, payload, time).await.ok().unwrap();
                let (expected, expected_token) = reference(
                    &creds,
                    "abc123.execute-api.eu-west-1.amazonaws.com",
                    &target.path,
                    payload,
                    time,
                );
                assert_eq!(signed.authorization, expected, "id {id}, token {token:?}");
                assert_eq!(signed.day.session_token, expected_token);
                assert_eq!(signed.amz_date, "20261130T005320Z");
            }
        }
    }
}

#[tokio::test]
async fn the_key_is_derived_once_per_day_and_again_on_a_new_one() {
    let creds = Credentials::new("AKID", "secret", None, None, "test");
    let post = lean(creds, "http://127.0.0.1:1/prod");
    let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    post.sign(&post.target("a"), b"x", day).await.ok().unwrap();
    let first = post
        .key
        .lock()
        .unwrap()
        .as_ref()
        .map(|k| (k.date.clone(), k.key.clone()));
    post.sign(&post.target("b"), b"y", day + Duration::from_secs(60))
        .await
        .ok()
        .unwrap();
    let same = post
        .key
        .lock()
        .unwrap()
        .as_ref()
        .map(|k| (k.date.clone(), k.key.clone()));
    assert_eq!(first, same);
    post.sign(&post.target("c"), b"z", day + Duration::from_secs(86_400))
        .await
        .ok()
        .unwrap();
    let next = post.key.lock().unwrap().as_ref().map(|k| k.date.clone());
    assert_eq!(next.as_deref(), Some("20261201"));
}

/// A TLS configuration with no trusted roots: enough to build a client.
fn tls() -> Arc<ClientConfig> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

#[test]
fn endpoints_split_into_host_and_path() {
    let creds = Credentials::new("AKID", "secret", None, None, "test");
    let p = lean(creds.clone(), "http://127.0.0.1:3001/prod/");
    assert_eq!(
        (p.http.authority(), p.prefix.as_str()),
        ("127.0.0.1:3001", "/prod")
    );
    let bare = lean(creds.clone(), "https://example.com");
    assert_eq!(
        (bare.http.authority(), bare.prefix.as_str()),
        ("example.com", "")
    );
    let retry = Retry {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };
    let refused = |endpoint: &str, tls: Option<Arc<ClientConfig>>| {
        LeanPost::new(
            endpoint,
            tls,
            Settings::default(),
            "r".into(),
            SharedCredentialsProvider::new(creds.clone()),
            retry,
        )
        .is_none()
    };
    assert!(refused("ftp://x/y", Some(tls())));
    assert!(refused("https://example.com/prod", None), "https needs TLS");
    assert!(refused("http://user@example.com/prod", None));
    assert!(refused("http://example.com:notaport/prod", None));
    assert!(refused("http:///prod", None));
    assert!(refused("http://example.com/pr od", None));
    assert!(refused("http://example.com/prod\r\nx: y", None));
    assert!(refused("http://example.com/prod?x=1", None));
}

#[test]
fn dates_are_the_smithy_formatters_own() {
    use aws_smithy_types::date_time::{DateTime, Format};
    // Every day from 1970 to 2200 at a moving time of day (leap years,
    // century years and 2000 included), and the first and last second of a
    // day.
    let mut secs = 0u64;
    while secs < 7_258_118_400 {
        for t in [secs, secs + 86_399] {
            let iso = DateTime::from_secs(i64::try_from(t).unwrap())
                .fmt(Format::DateTime)
                .unwrap();
            let compact: String = iso.chars().filter(|c| *c != '-' && *c != ':').collect();
            let (date, amz_date) = dates(SystemTime::UNIX_EPOCH + Duration::from_secs(t));
            assert_eq!(amz_date, compact, "{t}");
            assert_eq!(date, compact[..8], "{t}");
        }
        secs += 86_400 + 37;
    }
}
