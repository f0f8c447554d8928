//! The matcher against the EventBridge user guide's examples, page by page,
//! with the negative cases beside the positive ones.

use serde_json::{Value, json};

use super::*;

fn pattern(p: Value) -> Pattern {
    Pattern::parse(&p).unwrap_or_else(|e| panic!("{p} should parse: {e}"))
}

fn yes(p: Value, event: Value) {
    assert!(
        pattern(p.clone()).matches(&event),
        "{p} should match {event}"
    );
}

fn no(p: Value, event: Value) {
    assert!(
        !pattern(p.clone()).matches(&event),
        "{p} should not match {event}"
    );
}

fn refused(p: Value) -> PatternError {
    Pattern::parse(&p).expect_err(&format!("{p} should be refused"))
}

/// "Amazon EventBridge event patterns": the EC2 example.
fn ec2() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"}
    })
}

#[test]
fn event_patterns_fields_are_anded_values_ored_and_nested_objects_nest() {
    // "Amazon EventBridge event patterns".
    let p = json!({
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["terminated"]}
    });
    yes(p.clone(), ec2());
    let mut running = ec2();
    running["detail"]["state"] = json!("running");
    no(p, running.clone());
    yes(
        json!({"detail": {"state": ["running", "terminated"]}}),
        running,
    );
    no(json!({"source": ["aws.s3"]}), ec2());
    // A field the pattern names but the event lacks does not match.
    no(json!({"detail": {"missing": ["x"]}}), ec2());
}

#[test]
fn arrays_match_when_any_event_element_matches() {
    // "Arrays in Amazon EventBridge event patterns".
    let p = json!({"resources": [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"
    ]});
    yes(
        p.clone(),
        json!({"resources": [
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"
        ]}),
    );
    no(
        p,
        json!({"resources": ["arn:aws:ec2:us-east-1:999999999999:instance/i-b188560f"]}),
    );
}

#[test]
fn exact_values_numbers_null_and_empty_strings() {
    // "Content filtering…": null values and empty strings; numbers compare
    // as numbers, and a string is not a number.
    yes(
        json!({"responseElements": [null]}),
        json!({"responseElements": null}),
    );
    no(
        json!({"responseElements": [null]}),
        json!({"responseElements": "x"}),
    );
    no(json!({"responseElements": [null]}), json!({}));
    yes(json!({"eventVersion": [""]}), json!({"eventVersion": ""}));
    yes(json!({"n": [5]}), json!({"n": 5.0}));
    no(json!({"n": [5]}), json!({"n": "5"}));
    yes(json!({"flag": [true]}), json!({"flag": true}));
    no(json!({"flag": [true]}), json!({"flag": "true"}));
}

#[test]
fn prefix_and_suffix_with_and_without_case() {
    // "Content filtering…": prefix matching, suffix matching, and each
    // while ignoring case.
    let time = json!({"time": [{"prefix": "2017-10-02"}]});
    yes(time.clone(), json!({"time": "2017-10-02T18:43:48Z"}));
    no(time, json!({"time": "2017-10-03T18:43:48Z"}));
    let service = json!({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}});
    for s in ["EventBridge", "EVENTBRIDGE", "eventbus"] {
        yes(service.clone(), json!({"detail": {"service": s}}));
    }
    no(service, json!({"detail": {"service": "SNS"}}));
    let png = json!({"FileName": [{"suffix": ".png"}]});
    yes(png.clone(), json!({"FileName": "image.png"}));
    no(png, json!({"FileName": "image.PNG"}));
    let png_any_case =
        json!({"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}});
    yes(png_any_case, json!({"detail": {"FileName": "image.PNG"}}));
    // Prefix on a number never matches.
    no(json!({"n": [{"prefix": "1"}]}), json!({"n": 12}));
}

#[test]
fn anything_but_values_lists_prefix_suffix_case_and_wildcard() {
    // "Content filtering…": anything-but matching.
    let state = json!({"detail": {"state": [{"anything-but": "initializing"}]}});
    yes(state.clone(), json!({"detail": {"state": "running"}}));
    no(state.clone(), json!({"detail": {"state": "initializing"}}));
    // It needs the field (event-ruler; the guide is silent).
    no(state, json!({"detail": {}}));
    let limit = json!({"detail": {"x-limit": [{"anything-but": 123}]}});
    yes(limit.clone(), json!({"detail": {"x-limit": 456}}));
    no(limit, json!({"detail": {"x-limit": 123}}));
    let list = json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}});
    yes(list.clone(), json!({"detail": {"state": "running"}}));
    no(list, json!({"detail": {"state": "stopped"}}));
    let numbers = json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}});
    no(numbers.clone(), json!({"detail": {"x-limit": 200}}));
    yes(numbers, json!({"detail": {"x-limit": 201}}));
    let not_init = json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}});
    no(
        not_init.clone(),
        json!({"detail": {"state": "initializing"}}),
    );
    yes(not_init, json!({"detail": {"state": "running"}}));
    let not_txt = json!({"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}});
    no(
        not_txt.clone(),
        json!({"detail": {"FileName": "notes.txt"}}),
    );
    yes(not_txt, json!({"detail": {"FileName": "notes.md"}}));
    let case = json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]}});
    no(case.clone(), json!({"detail": {"state": "STOPPED"}}));
    yes(case, json!({"detail": {"state": "running"}}));
    let lib = json!({"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}});
    no(
        lib.clone(),
        json!({"detail": {"FilePath": "/usr/lib/x.so"}}),
    );
    yes(lib, json!({"detail": {"FilePath": "/usr/bin/x"}}));
}

#[test]
fn numeric_ranges_and_equality() {
    // "Content filtering…": numeric matching.
    let p = json!({"detail": {
        "c-count": [{"numeric": [">", 0, "<=", 5]}],
        "d-count": [{"numeric": ["<", 10]}],
        "x-limit": [{"numeric": ["=", 3.018e2]}]
    }});
    yes(
        p.clone(),
        json!({"detail": {"c-count": 5, "d-count": 7, "x-limit": 301.8}}),
    );
    no(
        p.clone(),
        json!({"detail": {"c-count": 0, "d-count": 7, "x-limit": 301.8}}),
    );
    no(
        p.clone(),
        json!({"detail": {"c-count": 5, "d-count": 10, "x-limit": 301.8}}),
    );
    no(
        p,
        json!({"detail": {"c-count": "5", "d-count": 7, "x-limit": 301.8}}),
    );
}

#[test]
fn exists_true_false_and_leaves_only() {
    // "Content filtering…": exists matching.
    let present = json!({"detail": {"state": [{"exists": true}]}});
    yes(present.clone(), ec2());
    no(present, json!({"detail": {"other": 1}}));
    let absent = json!({"detail": {"state": [{"exists": false}]}});
    no(absent.clone(), ec2());
    yes(absent.clone(), json!({"detail": {"other": 1}}));
    // The parent missing too: the field does not exist.
    yes(absent, json!({"source": "x"}));
    // Objects are not leaves (event-ruler).
    no(json!({"detail": [{"exists": true}]}), ec2());
}

#[test]
fn equals_ignore_case_and_wildcards() {
    // "Content filtering…": equals-ignore-case and wildcard matching.
    let name =
        json!({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]});
    yes(name, ec2());
    let dir = json!({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]});
    yes(
        dir.clone(),
        json!({"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}),
    );
    no(
        dir,
        json!({"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/default"}),
    );
    let png = json!({"key": [{"wildcard": "dir/*.png"}]});
    yes(png.clone(), json!({"key": "dir/a.png"}));
    yes(png.clone(), json!({"key": "dir/.png"}));
    no(png, json!({"key": "dir/a.jpg"}));
    let escaped = json!({"key": [{"wildcard": "a\\*b"}]});
    yes(escaped.clone(), json!({"key": "a*b"}));
    no(escaped, json!({"key": "axxb"}));
}

#[test]
fn cidr_blocks() {
    // "Content filtering…": IP address matching.
    let p = json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}});
    yes(
        p.clone(),
        json!({"detail": {"sourceIPAddress": "10.0.0.255"}}),
    );
    no(
        p.clone(),
        json!({"detail": {"sourceIPAddress": "10.0.1.0"}}),
    );
    no(p, json!({"detail": {"sourceIPAddress": "not an ip"}}));
}

#[test]
fn or_matching_across_fields() {
    // "Content filtering…": $or matching.
    let p = json!({"detail": {"$or": [
        {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
        {"d-count": [{"numeric": ["<", 10]}]},
        {"x-limit": [{"numeric": ["=", 3.018e2]}]}
    ]}});
    yes(p.clone(), json!({"detail": {"c-count": 3}}));
    yes(p.clone(), json!({"detail": {"x-limit": 301.8}}));
    no(p, json!({"detail": {"c-count": 9, "d-count": 11}}));
    let top = json!({"source": ["roomcast"], "$or": [
        {"detail-type": ["Message Stored"]},
        {"detail": {"code": ["forbidden"]}}
    ]});
    yes(
        top.clone(),
        json!({"source": "roomcast", "detail-type": "Message Stored", "detail": {}}),
    );
    no(
        top,
        json!({"source": "other", "detail-type": "Message Stored", "detail": {}}),
    );
}

#[test]
fn patterns_eventbridge_refuses_are_refused_with_where_and_why() {
    assert_eq!(refused(json!({"source": "aws.ec2"})).path, "source");
    assert_eq!(refused(json!({"source": []})).path, "source");
    let unknown = refused(json!({"detail": {"state": [{"contains": "x"}]}}));
    assert_eq!(unknown.path, "detail.state[0]");
    assert!(
        unknown.reason.contains("unrecognized match type contains"),
        "{unknown}"
    );
    refused(json!({"n": [{"numeric": [">", "a"]}]}));
    refused(json!({"n": [{"numeric": [">", 1, ">", 2]}]}));
    refused(json!({"n": [{"numeric": ["!", 1]}]}));
    refused(json!({"n": [{"exists": "yes"}]}));
    refused(json!({"n": [{"prefix": 1}]}));
    refused(json!({"n": [{"wildcard": "a**b"}]}));
    refused(json!({"n": [{"anything-but": [1, "a"]}]}));
    refused(json!({"n": [{"prefix": "a", "suffix": "b"}]}));
    refused(json!({"n": [{"cidr": "10.0.0.0/33"}]}));
    refused(json!({"$or": [{"a": ["b"]}]}));
    refused(json!([]));
    refused(json!({}));
    assert!(Pattern::parse_str("{not json").is_err());
}
