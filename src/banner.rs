//! What `roomcast dev` prints once it listens: the URLs a person needs,
//! fitted to the template (Roomcast's own, or a team's functions), and
//! whether Roomcast's events are on.

use std::fmt::Write as _;

use roomcast_emulator::Urls;
use roomcast_emulator::template::Profile;

/// The banner, for stdout.
pub(crate) fn banner(addr: std::net::SocketAddr, urls: &Urls) -> String {
    let mut b = format!("\nRoomcast emulator listening on {addr}\n");
    let own = matches!(urls.profile, Profile::Roomcast { .. });
    let query = if own { "?token=JWT" } else { "" };
    let _ = writeln!(b, "  WebSocket:       {}{query}", urls.websocket);
    let _ = writeln!(
        b,
        "  Management API:  {}  (endpoint_url for aws-sdk-apigatewaymanagement)",
        urls.management
    );
    let _ = writeln!(b, "  Inspector:       {}", urls.inspector);
    if let Some(demo) = &urls.demo {
        let _ = writeln!(b, "  Demo:            {demo}");
    }
    if let Some(token) = &urls.dev_token {
        let _ = writeln!(b, "  Dev token:       curl -s '{token}'");
    }
    match &urls.profile {
        Profile::Roomcast {
            event_bus: Some(bus),
        } => {
            let _ = writeln!(b, "  Events:          on (bus {bus}): roomcast events");
        }
        Profile::Roomcast { event_bus: None } => {
            let _ = writeln!(
                b,
                "  Events:          off (start with --parameter-overrides EventBusName=default)"
            );
        }
        Profile::Foreign => {
            let _ = writeln!(
                b,
                "  Events:          roomcast events (what your functions put to EventBridge)"
            );
        }
    }
    b
}
