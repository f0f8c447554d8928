//! The `Origin` allowlist for browser connections.

/// Which browser origins may connect.
///
/// Exact, case-sensitive match on the full origin (`https://app.example.com`).
/// `*` (the template's default) or an empty list allows every origin: fine
/// for development, not for production, where any web page holding a
/// user's token could open a socket with it. Requests without an `Origin`
/// header (non-browser clients, which can set any header they like) are
/// not affected by the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// Parses a comma-separated list (`ROOMCAST_ALLOWED_ORIGINS`); `*`
    /// anywhere in it allows every origin.
    pub fn parse(list: &str) -> Self {
        let allowed: Vec<String> = list
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if allowed.iter().any(|a| a == "*") {
            return Self::default();
        }
        Self { allowed }
    }

    /// Whether a request with this `Origin` header may connect.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.allowed.is_empty() => true,
            None => true,
            Some(o) => self.allowed.iter().any(|a| a == o),
        }
    }

    /// True when every origin is allowed.
    pub fn allows_all(&self) -> bool {
        self.allowed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_allows_everything() {
        let p = OriginPolicy::parse(" , ");
        assert!(p.allows_all());
        assert!(p.allows(Some("https://evil.example")));
    }

    #[test]
    fn a_star_allows_everything() {
        let p = OriginPolicy::parse("*");
        assert!(p.allows_all());
        assert!(p.allows(Some("https://any.example")));
        assert!(OriginPolicy::parse("https://a.example, *").allows_all());
    }

    #[test]
    fn listed_origins_match_exactly() {
        let p = OriginPolicy::parse("https://app.example.com, http://localhost:3001/");
        assert!(p.allows(Some("https://app.example.com")));
        assert!(p.allows(Some("http://localhost:3001")));
        assert!(!p.allows(Some("https://app.example.com.evil.io")));
        assert!(!p.allows(Some("https://APP.example.com")));
        assert!(!p.allows(Some("null")));
        assert!(p.allows(None), "non-browser clients send no Origin");
    }
}
