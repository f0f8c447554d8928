use super::*;
use crate::template::Template;

const RULES: &str = r#"
Parameters:
  Source: {Type: String, Default: roomcast}
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: chat}
  Target:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: t.handler
      CodeUri: python/
      Events:
        Closed:
          Type: EventBridgeRule
          Properties:
            EventBusName: chat
            InputPath: $.detail
            Pattern: {source: [!Ref Source], detail-type: [Connection Closed]}
  Messages:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: '{"detail-type": ["Message Stored"]}'
      Targets:
        - {Id: fn, Arn: !GetAtt Target.Arn}
        - {Id: queue, Arn: !GetAtt Queue.Arn}
  Nightly:
    Type: AWS::Events::Rule
    Properties: {ScheduleExpression: rate(1 day), Targets: [{Id: fn, Arn: !GetAtt Target.Arn}]}
"#;

#[test]
fn rules_come_from_events_rules_and_sam_eventbridge_rule_events() {
    let t = Template::parse(RULES).unwrap();
    assert_eq!(
        t.event_buses(),
        vec!["default".to_owned(), "chat".to_owned()]
    );
    let rules = t.event_rules().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    // The scheduled rule has no pattern: nothing to match offline.
    assert_eq!(names, vec!["Messages", "TargetClosed"]);
    let messages = &rules[0];
    assert_eq!(messages.bus, "chat");
    assert!(
        messages
            .pattern
            .matches(&serde_json::json!({"detail-type": "Message Stored"}))
    );
    assert!(
        matches!(&messages.targets[0], TargetSpec::Function { function, .. } if function == "Target")
    );
    assert!(matches!(&messages.targets[1], TargetSpec::Other { .. }));
    let closed = &rules[1];
    assert_eq!(closed.bus, "chat");
    // The pattern's intrinsics are evaluated.
    assert!(
        closed.pattern.matches(
            &serde_json::json!({"source": "roomcast", "detail-type": "Connection Closed"})
        )
    );
    assert!(matches!(
        &closed.targets[0],
        TargetSpec::Function { input_path: Some(p), .. } if p == "$.detail"
    ));
}

#[test]
fn a_pattern_eventbridge_would_refuse_stops_the_start_naming_the_rule() {
    let bad = RULES.replace(
        r#"'{"detail-type": ["Message Stored"]}'"#,
        r#"{detail-type: [{contains: Message}]}"#,
    );
    let err = Template::parse(&bad).unwrap().event_rules().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("rule Messages"), "{text}");
    assert!(text.contains("unrecognized match type contains"), "{text}");
}
