//! Where the CLI's commands find Roomcast: one `--url` (or `ROOMCAST_URL`)
//! for all of them, as a WebSocket URL (`ws://127.0.0.1:3001/prod`) or an
//! HTTP one (`http://127.0.0.1:3001` or `…/prod`): the clients use the
//! WebSocket form, `events`, `fault` and `/dev/token` the HTTP origin.

/// The default: the local emulator's default stage.
pub(crate) const DEFAULT: &str = "ws://127.0.0.1:3001/prod";

/// A Roomcast endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `ws` or `wss`.
    secure: bool,
    /// `host:port`.
    authority: String,
    /// The stage path, `/prod` (empty for none).
    path: String,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (secure, rest) = match url.split_once("://") {
            Some(("ws" | "http", rest)) => (false, rest),
            Some(("wss" | "https", rest)) => (true, rest),
            _ => {
                return Err(format!(
                    "{url:?} is not a ws://, wss://, http:// or https:// URL (e.g. {DEFAULT})"
                ));
            }
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || path.contains('?') || path.contains('#') {
            return Err(format!(
                "{url:?}: give the host and, for clients, the stage (e.g. {DEFAULT})"
            ));
        }
        let path = path.trim_end_matches('/');
        Ok(Self {
            secure,
            authority: authority.to_owned(),
            path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }
}

impl Endpoint {
    /// `ws(s)://host:port/stage`, where clients connect.
    pub(crate) fn websocket(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let path = if self.path.is_empty() {
            "/prod"
        } else {
            &self.path
        };
        format!("{scheme}://{}{path}", self.authority)
    }

    /// `http(s)://host:port`, where the emulator's own API is.
    pub(crate) fn http_base(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// Why a request failed, in words (a refused connection, a timeout).
pub(crate) fn why(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "it did not answer in time"
    } else if e.is_connect() {
        "nothing listens there"
    } else {
        "the request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_serves_every_command() {
        for url in [
            "ws://127.0.0.1:3001/prod",
            "http://127.0.0.1:3001/prod",
            "http://127.0.0.1:3001/prod/",
        ] {
            let e: Endpoint = url.parse().unwrap();
            assert_eq!(e.websocket(), "ws://127.0.0.1:3001/prod", "{url}");
            assert_eq!(e.http_base(), "http://127.0.0.1:3001", "{url}");
        }
        let bare: Endpoint = "http://127.0.0.1:3001".parse().unwrap();
        assert_eq!(bare.websocket(), "ws://127.0.0.1:3001/prod");
        let tls: Endpoint = "wss://id.execute-api.eu-west-1.amazonaws.com/live"
            .parse()
            .unwrap();
        assert_eq!(
            tls.http_base(),
            "https://id.execute-api.eu-west-1.amazonaws.com"
        );
        for bad in [
            "127.0.0.1:3001",
            "ftp://x/y",
            "ws:///prod",
            "ws://h/prod?token=x",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
