use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use roomcast_core::auth::Right;

const SECRET: &[u8] = b"test-secret-of-a-reasonable-length!!";
const RSA_PRIVATE: &[u8] = include_bytes!("rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("rsa_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("ec_private.pem");
const JWKS: &str = include_str!("jwks.json");

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims(extra: Value) -> Value {
    let mut base = json!({"sub": "alice", "name": "Alice", "exp": now() + 600});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn hs(c: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        c,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn rs(c: &Value, kid: Option<&str>) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    encode(&h, c, &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()).unwrap()
}

fn hs_verifier() -> TokenVerifier {
    TokenVerifier::hs256(
        SECRET,
        VerifierOptions {
            leeway_secs: 5,
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn hs256_token_yields_identity() {
    let token = hs(&claims(
        json!({"rooms": {"public.*": ["join", "send"]}, "direct": true}),
    ));
    let id = hs_verifier().verify(&token).await.unwrap();
    assert_eq!(id.user, "alice");
    assert_eq!(id.name, "Alice");
    assert!(id.direct);
    assert!(id.rooms.allows("public.x", Right::Send));
    assert!(!id.rooms.allows("private.x", Right::Join));
}

#[tokio::test]
async fn name_defaults_to_sub_and_rooms_to_nothing() {
    let id = hs_verifier()
        .verify(&hs(&claims(json!({"name": null}))))
        .await
        .unwrap();
    assert_eq!(id.name, "alice");
    assert!(id.rooms.is_empty());
    assert!(!id.direct);
}

async fn denied(v: &TokenVerifier, token: &str) -> AuthError {
    match v.verify(token).await {
        Ok(id) => panic!("token was accepted: {id:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bad_tokens_are_denied_with_a_reason() {
    let v = hs_verifier();
    type Check = fn(&AuthError) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        ("expired", hs(&claims(json!({"exp": now() - 60}))), |e| {
            matches!(e, AuthError::Expired)
        }),
        (
            "not yet valid",
            hs(&claims(json!({"nbf": now() + 600}))),
            |e| matches!(e, AuthError::NotYetValid),
        ),
        (
            "missing exp",
            hs(&claims(json!({"exp": null}))),
            |e| matches!(e, AuthError::MissingClaim(c) if c == "exp"),
        ),
        (
            "missing sub",
            hs(&claims(json!({"sub": null}))),
            |e| matches!(e, AuthError::MissingClaim(c) if c == "sub"),
        ),
        ("empty sub", hs(&claims(json!({"sub": ""}))), |e| {
            matches!(e, AuthError::MalformedSubject(_))
        }),
        // Ids are compared byte for byte, never trimmed: an id that differs
        // from another only in whitespace or by a control character is
        // refused rather than becoming a user who looks like another.
        (
            "sub with a leading space",
            hs(&claims(json!({"sub": " mallory"}))),
            |e| matches!(e, AuthError::MalformedSubject(s) if s == " mallory"),
        ),
        (
            "sub with a trailing newline",
            hs(&claims(json!({"sub": "mallory\n"}))),
            |e| matches!(e, AuthError::MalformedSubject(_)),
        ),
        (
            "sub with a control character",
            hs(&claims(json!({"sub": "mal\u{0}lory"}))),
            |e| matches!(e, AuthError::MalformedSubject(_)),
        ),
        (
            "bad rooms",
            hs(&claims(json!({"rooms": {"*": ["admin"]}}))),
            |e| matches!(e, AuthError::InvalidClaims(_)),
        ),
        (
            "wrong signature",
            encode(
                &Header::new(Algorithm::HS256),
                &claims(json!({})),
                &EncodingKey::from_secret(b"other"),
            )
            .unwrap(),
            |e| matches!(e, AuthError::BadSignature),
        ),
        ("malformed", "not.a.jwt".into(), |e| {
            matches!(e, AuthError::Malformed(_))
        }),
        ("garbage", "%%%".into(), |e| {
            matches!(e, AuthError::Malformed(_))
        }),
        ("empty", "  ".into(), |e| matches!(e, AuthError::Missing)),
        (
            "RS256 against an HS secret",
            rs(&claims(json!({})), None),
            |e| matches!(e, AuthError::AlgorithmNotAllowed(_)),
        ),
    ];
    for (name, token, check) in cases {
        let e = denied(&v, &token).await;
        assert!(check(&e), "{name}: got {e:?}");
        assert!(
            !e.to_string().contains(&token),
            "{name}: the reason must not contain the token"
        );
    }
}

#[tokio::test]
async fn alg_none_is_denied() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64.encode(claims(json!({})).to_string());
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        assert!(hs_verifier().verify(&token).await.is_err(), "{token}");
    }
}

#[tokio::test]
async fn leeway_tolerates_small_skew() {
    let v = TokenVerifier::hs256(
        SECRET,
        VerifierOptions {
            leeway_secs: 30,
            ..Default::default()
        },
    );
    assert!(
        v.verify(&hs(&claims(json!({"exp": now() - 10}))))
            .await
            .is_ok()
    );
    assert!(matches!(
        denied(&v, &hs(&claims(json!({"exp": now() - 60})))).await,
        AuthError::Expired
    ));
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let v = TokenVerifier::hs256(
        SECRET,
        VerifierOptions {
            issuer: Some("https://id.example".into()),
            audience: Some("roomcast".into()),
            leeway_secs: 0,
        },
    );
    let good = hs(&claims(
        json!({"iss": "https://id.example", "aud": "roomcast"}),
    ));
    assert!(v.verify(&good).await.is_ok());
    let wrong_iss = hs(&claims(
        json!({"iss": "https://evil.example", "aud": "roomcast"}),
    ));
    assert!(matches!(
        denied(&v, &wrong_iss).await,
        AuthError::WrongIssuer
    ));
    let wrong_aud = hs(&claims(
        json!({"iss": "https://id.example", "aud": "other"}),
    ));
    assert!(matches!(
        denied(&v, &wrong_aud).await,
        AuthError::WrongAudience
    ));
    let no_aud = hs(&claims(json!({"iss": "https://id.example"})));
    assert!(matches!(denied(&v, &no_aud).await, AuthError::MissingClaim(c) if c == "aud"));
}

#[tokio::test]
async fn mint_round_trips() {
    let token = mint_hs256(
        &DevClaims {
            sub: "bob".into(),
            name: "Bob".into(),
            exp: now() + 60,
            rooms: RoomRights::all(),
            direct: true,
            iss: None,
            aud: None,
        },
        SECRET,
    )
    .unwrap();
    let id = hs_verifier().verify(&token).await.unwrap();
    assert_eq!((id.user.as_str(), id.name.as_str()), ("bob", "Bob"));
    assert!(id.rooms.allows("anything", Right::Presence));
}

/// Serves `body` as JSON on 127.0.0.1 and counts requests. Stops with the test.
async fn jwks_server(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    (format!("http://{addr}/.well-known/jwks.json"), hits)
}

fn jwks_verifier(url: &str) -> TokenVerifier {
    let cache =
        JwksCache::new(url, Duration::from_secs(600)).with_min_refetch(Duration::from_secs(3600));
    TokenVerifier::jwks(
        cache,
        VerifierOptions {
            leeway_secs: 5,
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn jwks_verifies_rs256_and_es256_and_caches() {
    let (url, hits) = jwks_server(JWKS).await;
    let v = jwks_verifier(&url);
    assert_eq!(
        v.verify(&rs(&claims(json!({})), Some("rsa-1")))
            .await
            .unwrap()
            .user,
        "alice"
    );
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec-1".into());
    let es = encode(
        &h,
        &claims(json!({"sub": "erin"})),
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
    )
    .unwrap();
    assert_eq!(v.verify(&es).await.unwrap().user, "erin");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the key set is fetched once and cached"
    );
}

#[tokio::test]
async fn jwks_denies_confusion_unknown_keys_and_forgeries() {
    let (url, hits) = jwks_server(JWKS).await;
    let v = jwks_verifier(&url);
    // HS/RS confusion: an HS256 token "signed" with the RSA public key.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa-1".into());
    let confused = encode(
        &h,
        &claims(json!({})),
        &EncodingKey::from_secret(RSA_PUBLIC),
    )
    .unwrap();
    assert!(matches!(
        denied(&v, &confused).await,
        AuthError::AlgorithmNotAllowed(_)
    ));
    // The HMAC key in the set must never be usable.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("sym".into());
    let sym = encode(&h, &claims(json!({})), &EncodingKey::from_secret(b"secret")).unwrap();
    assert!(matches!(denied(&v, &sym).await, AuthError::UnknownKey(_)));
    // Encryption keys are not signing keys.
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), Some("enc-1"))).await,
        AuthError::UnknownKey(_)
    ));
    // Unknown kid: one refetch at most within min_refetch.
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), Some("nope"))).await,
        AuthError::UnknownKey(_)
    ));
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), Some("nope2"))).await,
        AuthError::UnknownKey(_)
    ));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "unknown kids must not trigger a fetch each"
    );
    // A token without a kid is ambiguous with two keys.
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), None)).await,
        AuthError::UnknownKey(_)
    ));
    // A forged RS256 signature.
    let good = rs(&claims(json!({})), Some("rsa-1"));
    let forged = format!("{}AAAA", &good[..good.len() - 4]);
    assert!(matches!(
        denied(&v, &forged).await,
        AuthError::BadSignature | AuthError::Malformed(_)
    ));
}

#[tokio::test]
async fn jwks_unreachable_is_a_clear_denial() {
    // Bind then drop, so the port is closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let v = jwks_verifier(&format!("http://{addr}/jwks.json"));
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), Some("rsa-1"))).await,
        AuthError::KeysUnavailable(_)
    ));
}

#[tokio::test]
async fn jwks_without_usable_keys_is_unavailable() {
    let (url, _) = jwks_server(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).await;
    let v = jwks_verifier(&url);
    assert!(matches!(
        denied(&v, &rs(&claims(json!({})), Some("rsa-1"))).await,
        AuthError::KeysUnavailable(_)
    ));
}
