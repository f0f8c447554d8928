//! Query strings and percent-decoding, as API Gateway reads them into
//! `queryStringParameters`.

use std::collections::BTreeMap;

/// Decodes `%XX` escapes (and `+` as space when `plus` is set). Invalid
/// escapes are kept as they are, like lenient servers do.
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a query string into name → values, in order.
pub(crate) fn parse_query(query: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(percent_decode(k, true))
            .or_default()
            .push(percent_decode(v, true));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a%3Db%2Bc", false), "a=b+c");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }

    #[test]
    fn parses_repeated_query_keys() {
        let q = parse_query(Some("token=a%2Eb&x=1&x=2&flag"));
        assert_eq!(q["token"], vec!["a.b"]);
        assert_eq!(q["x"], vec!["1", "2"]);
        assert_eq!(q["flag"], vec![""]);
        assert!(parse_query(None).is_empty());
    }
}
