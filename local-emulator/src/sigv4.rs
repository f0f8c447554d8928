//! SigV4 verification of `@connections` and Invoke API calls, when the
//! emulator is told to (`--verify-sigv4`): off by default, as requests to
//! a local emulator are usually signed with whatever credentials are at
//! hand. On, a request must be signed with the credentials the emulator
//! gives its functions (the environment's `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`, else `local`/`local`), so that a client's
//! signing is tested against a verifier.
//!
//! AWS General Reference, "Create a signed AWS API request" (Signature
//! Version 4): the canonical request (method, the path with each segment
//! URI-encoded twice for every service but S3, the sorted query, the
//! signed headers, the payload's SHA-256), the string to sign and the
//! signing key derived from the date, region and service of the
//! credential scope. Refusals are AWS's: 403 `MissingAuthenticationTokenException`
//! without a signature, `UnrecognizedClientException` for another access
//! key, `IncompleteSignatureException` when `host` is not signed,
//! `InvalidSignatureException` for a signature that does not match, a
//! date more than 15 minutes off, a scope naming another service or
//! region than the endpoint's, or an `x-amz-content-sha256` that is not
//! the body's hash.
//!
//! The payload's hash in the canonical request is always the body's own
//! (the SigV4 guide: "HashedPayload … Hex(SHA256Hash(payload))"): these
//! services take no `UNSIGNED-PAYLOAD` (S3's alone), so a captured request
//! replayed with another body never verifies, whatever header it carries.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use axum::body::Body;
use axum::extract::{Request, State as Shared};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};

use roomcast_aws::sigv4::{sha256_hex, uri_encode as encode};

use crate::http::HttpError;
use crate::iam::Iam;

/// Largest body verified (a synchronous invocation's 6 MB, with room).
const MAX_BODY: usize = 7 * 1024 * 1024;
/// How far a request's date may be from the emulator's clock.
const SKEW: Duration = Duration::from_secs(15 * 60);

/// The credentials requests must be signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    access_key: String,
    secret: String,
}

impl Verifier {
    /// Checks against this key pair.
    pub fn new(access_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret: secret.into(),
        }
    }

    /// The pair the emulator gives its functions.
    pub fn from_environment() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self::new(
            get("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "local".into()),
            get("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "local".into()),
        )
    }

    /// Verifies the request's signature over `body`, for `endpoint`'s
    /// service and region. Besides this pair, `functions` gives the secret
    /// of an access key the emulator handed a function (its role's
    /// credentials, `crate::iam`).
    pub(crate) fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
        endpoint: Endpoint<'_>,
        functions: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), HttpError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let auth = Authorization::parse(header("authorization"))?;
        let secret = if auth.access_key == self.access_key {
            self.secret.clone()
        } else {
            functions(auth.access_key).ok_or_else(|| {
                refuse(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            })?
        };
        let scope = Scope::parse(auth.scope, endpoint)?;
        let body_hash = sha256_hex(body);
        if let Some(claimed) = header("x-amz-content-sha256")
            && claimed != body_hash
        {
            return Err(refuse(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        let amz_date = header("x-amz-date")
            .ok_or_else(|| refuse("IncompleteSignatureException", "X-Amz-Date is required"))?;
        let signed_at = signed_at(amz_date, scope.date, now)?;
        let canonical = canonical_request(parts, auth.signed_headers, &body_hash);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
            auth.scope,
            sha256_hex(canonical.as_bytes())
        );
        let key = aws_sigv4::sign::v4::generate_signing_key(
            &secret,
            signed_at,
            scope.region,
            scope.service,
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
        if expected != auth.signature {
            tracing::info!(
                service = scope.service,
                region = scope.region,
                "SigV4 signature mismatch"
            );
            return Err(refuse(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ));
        }
        Ok(())
    }
}

/// The `Authorization` header's parts.
struct Authorization<'a> {
    access_key: &'a str,
    /// `date/region/service/aws4_request`.
    scope: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: Option<&'a str>) -> Result<Self, HttpError> {
        let auth = header
            .and_then(|a| a.strip_prefix("AWS4-HMAC-SHA256 "))
            .ok_or_else(|| {
                refuse(
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token",
                )
            })?;
        let field = |name: &str| {
            auth.split(',')
                .map(str::trim)
                .find_map(|f| f.strip_prefix(name))
                .ok_or_else(|| {
                    refuse(
                        "IncompleteSignatureException",
                        &format!(
                            "Authorization header requires '{}' parameter",
                            name.trim_end_matches('=')
                        ),
                    )
                })
        };
        let credential = field("Credential=")?;
        let signed_headers = field("SignedHeaders=")?;
        let signature = field("Signature=")?;
        if !signed_headers.split(';').any(|h| h == "host") {
            return Err(refuse(
                "IncompleteSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        let (access_key, scope) = credential
            .split_once('/')
            .ok_or_else(|| refuse("IncompleteSignatureException", "malformed Credential"))?;
        Ok(Self {
            access_key,
            scope,
            signed_headers,
            signature,
        })
    }
}

/// A credential scope, checked against the endpoint's service and region.
struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(scope: &'a str, endpoint: Endpoint<'_>) -> Result<Self, HttpError> {
        let mut parts = scope.split('/');
        let (Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(refuse(
                "IncompleteSignatureException",
                "malformed credential scope",
            ));
        };
        if service != endpoint.service {
            return Err(refuse(
                "InvalidSignatureException",
                &format!(
                    "Credential should be scoped to correct service: '{}'. ",
                    endpoint.service
                ),
            ));
        }
        if region != endpoint.region {
            return Err(refuse(
                "InvalidSignatureException",
                &format!(
                    "Credential should be scoped to a valid region, not '{}'. ",
                    region.chars().take(64).collect::<String>()
                ),
            ));
        }
        Ok(Self {
            date,
            region,
            service,
        })
    }
}

/// When the request was signed: `X-Amz-Date`, on the scope's day, within
/// 15 minutes of `now`.
fn signed_at(amz_date: &str, scope_date: &str, now: SystemTime) -> Result<SystemTime, HttpError> {
    let signed_at = parse_amz_date(amz_date)
        .filter(|_| amz_date.starts_with(scope_date))
        .ok_or_else(|| {
            refuse(
                "InvalidSignatureException",
                "X-Amz-Date does not match the credential scope",
            )
        })?;
    let off = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if off > SKEW {
        return Err(refuse(
            "InvalidSignatureException",
            "Signature expired: the request's date is more than 15 minutes from the server's",
        ));
    }
    Ok(signed_at)
}

fn refuse(kind: &'static str, message: &str) -> HttpError {
    HttpError::Api {
        status: StatusCode::FORBIDDEN,
        kind,
        message: message.to_owned(),
    }
}

/// The service and region a request is for: a signature scoped to another
/// is refused.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint<'a> {
    pub(crate) service: &'static str,
    pub(crate) region: &'a str,
}

/// The signing names of the APIs the emulator serves (each service model's
/// `signingName`).
pub(crate) const EXECUTE_API: &str = "execute-api";
pub(crate) const LAMBDA: &str = "lambda";
pub(crate) const EVENTS: &str = "events";

/// What verification needs, handed to each service that serves an AWS
/// API: the key pair (`None`: verification is off), the region of the
/// credential scope, and the keys the emulator handed functions.
pub(crate) struct Signatures {
    pub(crate) verifier: Option<Verifier>,
    pub(crate) region: String,
    pub(crate) iam: Option<Arc<Iam>>,
}

/// Verifies a request before its route runs, when verification is on.
pub(crate) async fn middleware(
    Shared(state): Shared<Arc<Signatures>>,
    req: Request,
    next: Next,
) -> Response {
    let service = if req.uri().path().starts_with("/2015-03-31/functions/") {
        LAMBDA
    } else {
        EXECUTE_API
    };
    match verified(&state, req, service).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// The request, its signature checked when verification is on; else the
/// refusal to send back. `service` is the API's signing name.
pub(crate) async fn verified(
    state: &Signatures,
    req: Request,
    service: &'static str,
) -> Result<Request, Response> {
    let Some(verifier) = &state.verifier else {
        return Ok(req);
    };
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(HttpError::Api {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                kind: "RequestTooLargeException",
                message: "request body too large to verify".into(),
            }
            .into_response());
        }
    };
    let functions = |key: &str| state.iam.as_ref().and_then(|iam| iam.secret(key));
    let endpoint = Endpoint {
        service,
        region: &state.region,
    };
    if let Err(e) = verifier.verify(&parts, &bytes, SystemTime::now(), endpoint, &functions) {
        tracing::info!(path = %parts.uri.path(), error = %e, "request refused: SigV4");
        return Err(e.into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// `YYYYMMDD'T'HHMMSS'Z'`.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    let t = DateTime::from_str(&iso, Format::DateTime).ok()?;
    SystemTime::try_from(t).ok()
}

fn canonical_request(parts: &Parts, signed_headers: &str, body_hash: &str) -> String {
    let path = parts.uri.path();
    let segments: Vec<String> = path.split('/').map(encode).collect();
    let mut query: Vec<(String, String)> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!(
        "{}\n{}\n{}\n",
        parts.method,
        segments.join("/"),
        query.join("&")
    );
    for name in signed_headers.split(';') {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(body_hash);
    out
}

fn decode(text: &str) -> String {
    crate::apigateway::query::percent_decode(text, false)
}
