//! PostToConnection without the SDK's request pipeline: the one call made
//! per recipient of a fan-out, so its CPU is most of a delivery's.
//!
//! The request is what the SDK sends (`POST {endpoint}/@connections/{id}`
//! with the frame as the body), signed with SigV4 for `execute-api` by
//! AWS's own `aws-sigv4` primitives, with the signing key derived once per
//! UTC day and credential set instead of once per call, over pooled
//! keep-alive HTTP/1.1 connections (`http1`). Outcomes are typed as the SDK's modelled
//! exceptions are (`management::classify`), retries follow the SDK
//! config's retry settings, and everything else the Management API does
//! (`DeleteConnection`, `GetConnection`) stays on the SDK.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use tokio_rustls::rustls::ClientConfig;

use super::http1::{Http1, Settings};
use crate::gateway::GatewayError;
use crate::sigv4::{sha256_hex, uri_encode as encode};

/// The service name API Gateway's Management API signs for.
const SERVICE: &str = "execute-api";
/// Credentials this close to expiring are fetched again.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// A day's signing key for one set of credentials, with what each
/// signature repeats from it.
struct DayKey {
    date: String,
    access_key: String,
    session_token: Option<String>,
    expires: Option<SystemTime>,
    key: Vec<u8>,
    /// `{date}/{region}/execute-api/aws4_request`.
    scope: String,
}

/// Retries, as the SDK config's retry settings give them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

/// The lean PostToConnection client for one callback endpoint.
pub(crate) struct LeanPost {
    /// Keep-alive connections to the endpoint's origin.
    http: Http1,
    /// The endpoint's path (`/stage`), as sent.
    prefix: String,
    /// `{prefix}/@connections/` as the canonical request writes it (each
    /// segment encoded once more).
    canonical_prefix: String,
    region: String,
    credentials: SharedCredentialsProvider,
    retry: Retry,
    key: Mutex<Option<Arc<DayKey>>>,
    /// The last payload signed and its hash: a fan-out posts one payload
    /// to every recipient, so it is hashed once, not once per post.
    last_payload: Mutex<Option<(Vec<u8>, String)>>,
    /// Running in Lambda (`AWS_LAMBDA_FUNCTION_NAME`), read once: only then
    /// does a post carry the invocation's trace header.
    in_lambda: bool,
}

impl LeanPost {
    /// `None` when the endpoint is not an `http(s)://host/...` URL, or is
    /// `https://` without a TLS configuration (`tls`).
    pub(crate) fn new(
        endpoint: &str,
        tls: Option<Arc<ClientConfig>>,
        settings: Settings,
        region: String,
        credentials: SharedCredentialsProvider,
        retry: Retry,
    ) -> Option<Self> {
        let base = endpoint.trim_end_matches('/');
        let (rest, tls) = match base.strip_prefix("https://") {
            Some(rest) => (rest, Some(tls?)),
            None => (base.strip_prefix("http://")?, None),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        // Both go into the request line and `Host` as they are: visible
        // ASCII only, and no user info, query or fragment.
        let visible = |t: &str| t.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if authority.is_empty()
            || authority.contains(['@', '?', '#'])
            || !visible(authority)
            || !visible(prefix)
            || prefix.contains(['?', '#'])
        {
            return None;
        }
        let canonical_prefix: Vec<String> = format!("{prefix}/@connections/")
            .split('/')
            .map(encode)
            .collect();
        Some(Self {
            http: Http1::new(authority, tls, settings)?,
            prefix: prefix.to_owned(),
            canonical_prefix: canonical_prefix.join("/"),
            region,
            credentials,
            retry,
            key: Mutex::new(None),
            last_payload: Mutex::new(None),
            in_lambda: std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        })
    }

    /// Posts `payload` to `connection_id`, retrying what the SDK would.
    pub(crate) async fn post(
        &self,
        connection_id: &str,
        payload: &[u8],
    ) -> Result<(), GatewayError> {
        let target = self.target(connection_id);
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&target, payload).await;
            match outcome {
                Err(Failure { error, retry: true }) if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                    tracing::debug!(connection_id, attempt, error = %error, "PostToConnection retried");
                }
                Err(Failure { error, .. }) => return Err(error),
                Ok(()) => return Ok(()),
            }
        }
    }

    /// The request path for a connection, as sent and as signed.
    fn target(&self, connection_id: &str) -> Target {
        let id = encode(connection_id);
        Target {
            path: format!("{}/@connections/{id}", self.prefix),
            canonical_path: format!("{}{}", self.canonical_prefix, encode(&id)),
        }
    }

    async fn attempt(&self, target: &Target, payload: &[u8]) -> Result<(), Failure> {
        let now = SystemTime::now();
        let signed = self.sign(target, payload, now).await?;
        let trace = self.in_lambda.then(trace_header).flatten();
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(4);
        headers.push(("x-amz-date", &signed.amz_date));
        headers.push(("authorization", &signed.authorization));
        if let Some(token) = &signed.day.session_token {
            headers.push(("x-amz-security-token", token));
        }
        if let Some(trace) = &trace {
            headers.push(("x-amzn-trace-id", trace));
        }
        let reply = self
            .http
            .post(&target.path, &headers, payload)
            .await
            .map_err(|e| Failure {
                // Connection failures and timeouts: the SDK retries them too.
                error: GatewayError::Unavailable(format!("PostToConnection: {e}")),
                retry: true,
            })?;
        if (200..300).contains(&reply.status) {
            return Ok(());
        }
        let error_type = reply
            .header("x-amzn-errortype")
            .map(|v| v.split(':').next().unwrap_or(&v).to_owned());
        let body = String::from_utf8_lossy(&reply.body);
        Err(classify(reply.status, error_type.as_deref(), &body))
    }

    /// Full-jitter exponential backoff, as the SDK's standard retry mode.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.retry.max_backoff);
        // A cheap jitter source: the clock's nanoseconds.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        cap.mul_f64(f64::from(nanos % 1000) / 1000.0)
    }

    async fn sign(
        &self,
        target: &Target,
        payload: &[u8],
        now: SystemTime,
    ) -> Result<Signed, Failure> {
        let (date, amz_date) = dates(now);
        let cached = {
            let guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .filter(|k| k.date == date && k.expires.is_none_or(|e| e > now + REFRESH_BEFORE))
                .cloned()
        };
        let day = match cached {
            Some(day) => day,
            None => self.refresh(&date, now).await?,
        };
        let payload_hash = self.payload_hash(payload);
        let (signed_headers, canonical_hash) = canonical_request_hash(
            &target.canonical_path,
            self.http.authority(),
            &amz_date,
            day.session_token.as_deref(),
            &payload_hash,
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{canonical_hash}",
            day.scope
        );
        let signature =
            aws_sigv4::sign::v4::calculate_signature(&day.key, string_to_sign.as_bytes());
        Ok(Signed {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
                day.access_key, day.scope
            ),
            amz_date,
            day,
        })
    }

    /// The payload's SHA-256, from `last_payload` when it is the same one.
    fn payload_hash(&self, payload: &[u8]) -> String {
        let lock = || self.last_payload.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bytes, hash)) = lock().as_ref()
            && bytes.as_slice() == payload
        {
            return hash.clone();
        }
        // Hashed outside the lock: concurrent posts of other payloads do
        // not wait for it.
        let hash = sha256_hex(payload);
        *lock() = Some((payload.to_vec(), hash.clone()));
        hash
    }

    /// Fetches credentials and derives the day's key.
    async fn refresh(&self, date: &str, now: SystemTime) -> Result<Arc<DayKey>, Failure> {
        let creds: Credentials =
            self.credentials
                .provide_credentials()
                .await
                .map_err(|e| Failure {
                    error: GatewayError::Unavailable(format!("no credentials to sign with: {e}")),
                    retry: false,
                })?;
        let key = aws_sigv4::sign::v4::generate_signing_key(
            creds.secret_access_key(),
            now,
            &self.region,
            SERVICE,
        )
        .as_ref()
        .to_vec();
        let day = Arc::new(DayKey {
            date: date.to_owned(),
            access_key: creds.access_key_id().to_owned(),
            session_token: creds.session_token().map(str::to_owned),
            expires: creds.expiry(),
            key,
            scope: format!("{date}/{}/{SERVICE}/aws4_request", self.region),
        });
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(day.clone());
        Ok(day)
    }
}

/// The invocation's trace header, as the SDK's recursion detection adds
/// it inside Lambda: from `_X_AMZN_TRACE_ID`, which the runtime sets for
/// each invocation. SigV4 leaves `x-amzn-trace-id` unsigned, so it is
/// added after signing.
fn trace_header() -> Option<String> {
    let trace = std::env::var("_X_AMZN_TRACE_ID").ok()?;
    (!trace.is_empty() && !trace.bytes().any(|b| b.is_ascii_control())).then_some(trace)
}

/// A connection's request path: as sent, and as the canonical request
/// writes it.
struct Target {
    path: String,
    canonical_path: String,
}

/// A failed attempt, and whether the SDK would try again.
struct Failure {
    error: GatewayError,
    retry: bool,
}

struct Signed {
    authorization: String,
    amz_date: String,
    /// The key it was signed with: its session token goes with the request.
    day: Arc<DayKey>,
}

/// An error answer typed as the SDK types it: by the modelled exception
/// the service names (`x-amzn-ErrorType`), else by status. Throttling and
/// server errors are retried, as the SDK's standard retry mode does.
fn classify(status: u16, error_type: Option<&str>, body: &str) -> Failure {
    let detail = || {
        let text: String = body.chars().take(200).collect();
        format!("{status} {}: {text}", error_type.unwrap_or("error"))
    };
    let error = match (error_type, status) {
        (Some("GoneException"), _) | (None, 410) => GatewayError::Gone,
        (Some("PayloadTooLargeException"), _) | (None, 413) => GatewayError::PayloadTooLarge,
        (Some("LimitExceededException"), _) | (None, 429) => GatewayError::Throttled,
        (Some("ForbiddenException"), _) | (None, 403) => GatewayError::Forbidden(detail()),
        _ => GatewayError::Unavailable(detail()),
    };
    let retry = matches!(error, GatewayError::Throttled) || status >= 500;
    Failure { error, retry }
}

/// `YYYYMMDD` and `YYYYMMDD'T'HHMMSS'Z'` in UTC.
fn dates(now: SystemTime) -> (String, String) {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let compact = format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    (compact[..8].to_owned(), compact)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The canonical request's hash and signed-header list (SigV4, for every
/// service but S3), written straight into the hash. The signed headers are
/// `host`, `x-amz-date` and, with temporary credentials,
/// `x-amz-security-token`: already in sorted order.
fn canonical_request_hash(
    canonical_path: &str,
    host: &str,
    amz_date: &str,
    session_token: Option<&str>,
    payload_hash: &str,
) -> (&'static str, String) {
    use sha2::{Digest, Sha256};
    let signed = if session_token.is_some() {
        "host;x-amz-date;x-amz-security-token"
    } else {
        "host;x-amz-date"
    };
    let mut h = Sha256::new();
    for part in [
        "POST\n",
        canonical_path,
        "\n\nhost:",
        host.trim(),
        "\nx-amz-date:",
        amz_date,
        "\n",
    ] {
        h.update(part.as_bytes());
    }
    if let Some(token) = session_token {
        for part in ["x-amz-security-token:", token.trim(), "\n"] {
            h.update(part.as_bytes());
        }
    }
    for part in ["\n", signed, "\n", payload_hash] {
        h.update(part.as_bytes());
    }
    (signed, crate::sigv4::hex(&h.finalize()))
}

#[cfg(test)]
mod tests;
