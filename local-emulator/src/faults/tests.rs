use serde_json::json;

use super::*;

fn req(v: serde_json::Value) -> Result<FaultRequest, String> {
    FaultRequest::from_json(v)
}

#[test]
fn requests_say_what_is_wrong() {
    assert!(
        req(json!({"fault": "explode"}))
            .unwrap_err()
            .contains("explode")
    );
    assert!(
        req(json!({"fault": "post-status", "status": 410, "colour": 1}))
            .unwrap_err()
            .contains("colour")
    );
    assert!(
        req(json!({"fault": "drop-disconnect", "scope": {"planet": "x"}}))
            .unwrap_err()
            .contains("planet")
    );
    assert!(req(json!({"fault": "drop-disconnect", "count": -1})).is_err());
    let faults = Faults::default();
    let bad = req(json!({"fault": "post-status", "status": 500})).unwrap();
    assert!(faults.add(bad).unwrap_err().contains("410, 413 or 429"));
    let zero = req(json!({"fault": "drop-disconnect", "count": 0})).unwrap();
    assert!(faults.add(zero).is_err());
    let scoped =
        req(json!({"fault": "store-error", "error": "throttling", "scope": {"user": "bob"}}))
            .unwrap();
    assert!(faults.add(scoped).unwrap_err().contains("no scope"));
    assert!(
        req(json!({"fault": "store-error", "error": "on-fire"}))
            .unwrap_err()
            .contains("on-fire")
    );
}

#[test]
fn a_counted_fault_strikes_its_scope_that_many_times_then_is_gone() {
    let faults = Faults::default();
    let f =
        req(json!({"fault": "post-status", "status": 410, "scope": {"user": "bob"}, "count": 2}))
            .unwrap();
    let id = faults.add(f).unwrap().id;
    let bob = Subject {
        connection: Some("c1"),
        user: Some("bob"),
        function: None,
    };
    let ann = Subject {
        user: Some("ann"),
        ..bob
    };
    assert_eq!(faults.take(Point::Post, ann), None, "not in scope");
    assert_eq!(faults.take(Point::Disconnect, bob), None, "another point");
    assert_eq!(faults.list()[0].remaining, Some(2));
    assert_eq!(
        faults.take(Point::Post, bob),
        Some(FaultKind::PostStatus { status: 410 })
    );
    assert_eq!(faults.list()[0].hits, 1);
    assert!(faults.take(Point::Post, bob).is_some());
    assert_eq!(faults.take(Point::Post, bob), None, "used up");
    assert!(faults.list().is_empty());
    assert!(!faults.remove(id));
    assert_eq!(faults.stats(), (0, vec![("post-status", 2)]));
}

#[tokio::test(start_paused = true)]
async fn a_timed_fault_ends_at_its_time_and_faults_can_be_removed() {
    let faults = Faults::default();
    let timed = req(json!({"fault": "invoke-error", "durationMs": 1000})).unwrap();
    faults.add(timed).unwrap();
    let forever = req(json!({"fault": "drop-disconnect", "scope": {"connection": "c9"}})).unwrap();
    let id = faults.add(forever).unwrap().id;
    let any = Subject::default();
    assert!(faults.take(Point::Invoke, any).is_some());
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert_eq!(faults.take(Point::Invoke, any), None, "expired");
    assert_eq!(faults.list().len(), 1);
    assert!(faults.remove(id));
    assert_eq!(faults.clear(), 0);
}

/// `roomcast fault add --help` lists `KINDS`: each is a fault the API
/// takes, under that name.
#[test]
fn every_listed_kind_is_one_the_api_takes() {
    let samples = [
        json!({"fault": "post-status", "status": 410}),
        json!({"fault": "post-stall", "ms": 10}),
        json!({"fault": "drop-disconnect"}),
        json!({"fault": "invoke-error"}),
        json!({"fault": "invoke-timeout"}),
        json!({"fault": "invoke-throttle"}),
        json!({"fault": "invoke-crash"}),
        json!({"fault": "store-error", "error": "throttling"}),
        json!({"fault": "fast-clock", "factor": 2}),
    ];
    assert_eq!(samples.len(), KINDS.len());
    for (sample, listed) in samples.into_iter().zip(KINDS) {
        let kind: FaultKind = serde_json::from_value(sample).unwrap();
        assert_eq!(name(&kind), *listed);
    }
}

/// The inspector's fault form offers every kind the API takes.
#[test]
fn the_inspector_offers_every_kind() {
    let page = include_str!("../../inspector/index.html");
    for kind in KINDS {
        assert!(
            page.contains(&format!(r#"<option value="{kind}">"#)),
            "{kind} is not in the inspector's fault form"
        );
    }
}
