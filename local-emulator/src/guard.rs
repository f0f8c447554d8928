//! The emulator's front door (DESIGN.md §9, docs/security.md): it is a
//! developer tool on localhost with powerful endpoints, and a hostile web
//! page in the developer's browser must not drive them.
//!
//! - **Host allowlist** against DNS rebinding (a page whose name the
//!   attacker re-resolves to 127.0.0.1 is same-origin with itself, so the
//!   browser lets it read the answers): every request, WebSocket upgrades
//!   included, must name an IP address (a rebinding page cannot: it has a
//!   name), `localhost` or a `*.localhost` name, the API's execute-api
//!   host, or a name given with `--allowed-host`; as Vite's
//!   `server.allowedHosts` (the fix of CVE-2025-24010) and
//!   webpack-dev-server's `allowedHosts`.
//! - **No cross-site writes**: a request that is not GET or HEAD is refused
//!   when its `Origin` is present and not the emulator's own, or when its
//!   `Sec-Fetch-Site` says `cross-site` or `same-site` (OWASP's CSRF cheat
//!   sheet, "Fetch Metadata headers"). The AWS SDKs and CLIs send neither.
//! - **JSON only** on the emulator's own API (`/_roomcast/`): a page can
//!   send `text/plain` without a preflight, never `application/json`.
//! - **Developer APIs to this machine only** when listening beyond
//!   loopback: the inspector, replay, faults, `/dev/token` and the Invoke
//!   API answer only loopback peers unless `--expose-dev-apis`.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Method, StatusCode, header};

/// Who may be served, and how the emulator names itself.
#[derive(Clone, Debug)]
pub(crate) struct FrontDoor {
    /// `{apiId}.execute-api.{region}.amazonaws.com`, lowercase.
    execute_api: String,
    /// `--allowed-host` names, lowercase.
    extra: Vec<String>,
    /// The port the emulator listens on: its own origin's.
    port: u16,
    /// Developer APIs answer loopback peers only.
    dev_apis_loopback_only: bool,
}

/// Why a request is refused at the door.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The `Host` is not one the emulator serves: add it with
    /// `--allowed-host` if it is yours.
    #[error(
        "Host {0:?} is not allowed (DNS rebinding protection): the emulator answers localhost, *.localhost, IP addresses and the API's execute-api host; pass --allowed-host {0} if this name is yours"
    )]
    Host(String),
    /// A state-changing request from another site's page.
    #[error(
        "cross-site request refused: {0}. The emulator's APIs take writes from its own pages and from tools that send no Origin (the AWS SDKs, the CLI)"
    )]
    CrossSite(String),
    /// `/_roomcast/` takes JSON only.
    #[error("the emulator's API takes Content-Type: application/json")]
    NotJson,
    /// A developer API asked from another machine.
    #[error(
        "this developer API answers this machine only (the emulator listens beyond loopback); pass --expose-dev-apis to serve it to the network"
    )]
    NotLocal,
}

impl Refused {
    /// The answer: 403 (415 for a content type), a JSON `{"message"}`.
    pub(crate) fn into_response(self) -> axum::response::Response {
        let status = match self {
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::FORBIDDEN,
        };
        crate::http::json(status, &serde_json::json!({"message": self.to_string()}))
    }
}

impl FrontDoor {
    pub(crate) fn new(
        execute_api: &str,
        extra: &[String],
        addr: SocketAddr,
        expose_dev_apis: bool,
    ) -> Self {
        Self {
            execute_api: execute_api.to_ascii_lowercase(),
            extra: extra.iter().map(|h| h.to_ascii_lowercase()).collect(),
            port: addr.port(),
            dev_apis_loopback_only: !addr.ip().is_loopback() && !expose_dev_apis,
        }
    }

    /// Whether requests with this `Host` are served.
    pub(crate) fn allows_host(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        local_name(&name) || name == self.execute_api || self.extra.contains(&name)
    }

    /// The checks every request on the emulator's port passes.
    pub(crate) fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> Result<(), Refused> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !self.allows_host(host) {
            return Err(Refused::Host(host.chars().take(255).collect()));
        }
        let dev_api = is_dev_api(path);
        if dev_api && self.dev_apis_loopback_only && !peer.ip().is_loopback() {
            return Err(Refused::NotLocal);
        }
        if matches!(*method, Method::GET | Method::HEAD) {
            return Ok(());
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && matches!(site, "cross-site" | "same-site")
        {
            return Err(Refused::CrossSite(format!("Sec-Fetch-Site is {site}")));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            if !self.own_origin(origin) {
                let shown: String = origin.chars().take(255).collect();
                return Err(Refused::CrossSite(format!(
                    "Origin {shown} is not the emulator's own"
                )));
            }
        }
        if path.starts_with("/_roomcast/") && !is_json(headers) {
            return Err(Refused::NotJson);
        }
        Ok(())
    }

    /// `http(s)://{a host the emulator serves}:{its port}`.
    fn own_origin(&self, origin: &str) -> bool {
        let (scheme, rest) = match origin.split_once("://") {
            Some(p) => p,
            None => return false,
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        if rest.contains(['/', '?', '#', '@']) {
            return false;
        }
        let port = port_of(rest).unwrap_or(Some(default_port));
        port == Some(self.port) && self.allows_host(rest)
    }
}

/// A name only this machine answers to, or an address (which a page
/// served from a name cannot rebind).
fn local_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost")
}

/// For the listeners only functions use (the DynamoDB pass-through, each
/// instance's Runtime API): a loopback address or `localhost`, as the
/// endpoints the emulator hands out name them.
pub(crate) fn local_host(headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| local_name(&strip_port(h).to_ascii_lowercase()))
}

/// An axum middleware for those listeners.
pub(crate) async fn local_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if local_host(req.headers()) {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    Refused::Host(host.chars().take(255).collect()).into_response()
}

/// The host part of a `Host` value (`[::1]:3001` → `[::1]`, `a:1` → `a`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The port of an authority: `None` when absent, `Some(None)` when not a
/// number.
fn port_of(authority: &str) -> Option<Option<u16>> {
    let after = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.1,
        None => authority,
    };
    let (_, port) = after.rsplit_once(':')?;
    Some(port.parse().ok())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The emulator's developer APIs: inspector, replay, faults, dev tokens,
/// the Lambda Invoke API.
fn is_dev_api(path: &str) -> bool {
    path.starts_with("/_roomcast/")
        || path == "/_roomcast"
        || path == "/dev/token"
        || path.starts_with("/2015-03-31/functions/")
}

#[cfg(test)]
mod tests;
