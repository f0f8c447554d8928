use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Method};

use super::{FrontDoor, Refused, local_host};

const LOCAL: &str = "127.0.0.1:50000";
const API: &str = "abcdefghij.execute-api.us-east-1.amazonaws.com";

fn door(expose: bool, bound: &str) -> FrontDoor {
    FrontDoor::new(
        API,
        &["dev.example.test".into()],
        bound.parse().unwrap(),
        expose,
    )
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn check(
    d: &FrontDoor,
    method: Method,
    path: &str,
    pairs: &[(&'static str, &str)],
) -> Result<(), Refused> {
    d.check(&method, path, &headers(pairs), LOCAL.parse().unwrap())
}

/// Vite, `server.allowedHosts`: "By default, localhost and domains under
/// .localhost and all IP addresses are allowed"; a name an attacker
/// controls and rebinds to 127.0.0.1 is not.
#[test]
fn hosts_the_emulator_serves_and_a_rebound_name_it_refuses() {
    let d = door(false, "127.0.0.1:3001");
    for ok in [
        "127.0.0.1:3001",
        "localhost:3001",
        "LOCALHOST",
        "app.localhost:3001",
        "[::1]:3001",
        "192.168.1.20:3001",
        "abcdefghij.execute-api.us-east-1.amazonaws.com",
        "dev.example.test:3001",
    ] {
        assert_eq!(
            check(&d, Method::GET, "/dev/token", &[("host", ok)]),
            Ok(()),
            "{ok}"
        );
    }
    for bad in [
        "evil.example:3001",
        "localhost.evil.example",
        "127.0.0.1.nip.io:3001",
        "other.execute-api.us-east-1.amazonaws.com",
        "",
    ] {
        assert!(
            matches!(
                check(&d, Method::GET, "/_roomcast/timeline", &[("host", bad)]),
                Err(Refused::Host(_))
            ),
            "{bad}"
        );
    }
    // No Host at all (HTTP/1.0) is no allowed host either.
    assert!(matches!(
        check(&d, Method::GET, "/", &[]),
        Err(Refused::Host(_))
    ));
    assert!(
        Refused::Host("evil.example".into())
            .to_string()
            .contains("--allowed-host evil.example")
    );
}

/// OWASP CSRF cheat sheet, "Fetch Metadata headers": refuse
/// state-changing requests whose `Sec-Fetch-Site` is `cross-site` or
/// `same-site`; and a foreign `Origin` (what `fetch(…, {mode: "no-cors"})`
/// from another page sends).
#[test]
fn writes_from_other_sites_are_refused_and_the_sdks_pass() {
    let d = door(false, "127.0.0.1:3001");
    let host = ("host", "127.0.0.1:3001");
    let json = ("content-type", "application/json");
    for (name, extra) in [
        ("foreign origin", ("origin", "https://evil.example")),
        ("another port", ("origin", "http://127.0.0.1:5173")),
        ("opaque origin", ("origin", "null")),
        ("cross-site fetch", ("sec-fetch-site", "cross-site")),
        ("same-site fetch", ("sec-fetch-site", "same-site")),
    ] {
        for path in [
            "/_roomcast/replay",
            "/2015-03-31/functions/F/invocations",
            "/prod/@connections/a=",
            "/",
        ] {
            assert!(
                matches!(
                    check(&d, Method::POST, path, &[host, json, extra]),
                    Err(Refused::CrossSite(_))
                ),
                "{name} {path}"
            );
        }
    }
    // The inspector's own page, and the SDKs (no Origin, no Fetch Metadata).
    let own = [
        host,
        json,
        ("origin", "http://localhost:3001"),
        ("sec-fetch-site", "same-origin"),
    ];
    assert_eq!(check(&d, Method::POST, "/_roomcast/replay", &own), Ok(()));
    assert_eq!(check(&d, Method::DELETE, "/_roomcast/faults", &own), Ok(()));
    assert_eq!(
        check(&d, Method::POST, "/prod/@connections/a=", &[host]),
        Ok(())
    );
    // Reading is not writing: a GET from another site passes the door
    // (the browser keeps the answer from that site's page).
    assert_eq!(
        check(
            &d,
            Method::GET,
            "/prod",
            &[host, ("origin", "http://localhost:5173")]
        ),
        Ok(())
    );
}

#[test]
fn the_emulators_own_api_takes_json_only() {
    let d = door(false, "127.0.0.1:3001");
    let host = ("host", "127.0.0.1:3001");
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        assert_eq!(
            check(
                &d,
                Method::POST,
                "/_roomcast/faults",
                &[host, ("content-type", ct)]
            ),
            Err(Refused::NotJson),
            "{ct}"
        );
    }
    assert_eq!(
        check(&d, Method::POST, "/_roomcast/faults", &[host]),
        Err(Refused::NotJson)
    );
    assert_eq!(
        check(
            &d,
            Method::POST,
            "/_roomcast/faults",
            &[host, ("content-type", "application/json; charset=utf-8")]
        ),
        Ok(())
    );
}

#[test]
fn beyond_loopback_the_developer_apis_answer_this_machine_only() {
    let network: SocketAddr = "192.168.1.30:40000".parse().unwrap();
    let h = headers(&[("host", "192.168.1.20:3001")]);
    let bound_wide = door(false, "0.0.0.0:3001");
    for path in [
        "/_roomcast/timeline",
        "/dev/token",
        "/2015-03-31/functions/F/invocations",
    ] {
        assert_eq!(
            bound_wide.check(&Method::GET, path, &h, network),
            Err(Refused::NotLocal),
            "{path}"
        );
        assert_eq!(
            bound_wide.check(&Method::GET, path, &h, LOCAL.parse().unwrap()),
            Ok(()),
            "{path}"
        );
    }
    // The WebSocket API and @connections stay open to the network.
    assert_eq!(bound_wide.check(&Method::GET, "/prod", &h, network), Ok(()));
    let exposed = door(true, "0.0.0.0:3001");
    assert_eq!(
        exposed.check(&Method::GET, "/dev/token", &h, network),
        Ok(())
    );
    let loopback = door(false, "127.0.0.1:3001");
    assert_eq!(
        loopback.check(&Method::GET, "/dev/token", &h, network),
        Ok(())
    );
}

#[test]
fn the_functions_own_listeners_answer_loopback_names_only() {
    assert!(local_host(&headers(&[("host", "127.0.0.1:41234")])));
    assert!(local_host(&headers(&[("host", "localhost:41234")])));
    assert!(!local_host(&headers(&[(
        "host",
        "rebound.evil.example:41234"
    )])));
    assert!(!local_host(&HeaderMap::new()));
}
