#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use super::Role;
use super::roles::of_functions;
use crate::template::Template;

const REGION: &str = "us-east-1";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/t";

fn roles(text: &str, params: &[(&str, &str)]) -> BTreeMap<String, Role> {
    let overrides = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let t = Template::parse(text)
        .unwrap()
        .with_parameters(&overrides)
        .unwrap();
    of_functions(&t, REGION)
}

fn allows(role: &Role, action: &str, resource: &str) -> bool {
    role.decide(action, resource).is_ok()
}

const SAM_FORMS: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Bus: {Type: String, Default: ""}
Conditions:
  HasBus: !Not [!Equals [!Ref Bus, ""]]
  Both: !And [!Condition HasBus, !Equals [!Ref AWS::Region, us-east-1]]
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: t}
  Fanout:
    Type: AWS::Serverless::Function
    Properties: {FunctionName: fan, Runtime: python3.12, Handler: a.b, CodeUri: x/}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      CodeUri: x/
      Policies:
        - DynamoDBReadPolicy: {TableName: !Ref T}
        - LambdaInvokePolicy: {FunctionName: !Ref Fanout}
        - AmazonAPIGatewayInvokeFullAccess
        - !If [Both, {EventBridgePutEventsPolicy: {EventBusName: !Ref Bus}}, !Ref AWS::NoValue]
        - Statement:
            - Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt T.Arn
            - Effect: Deny
              Action: dynamodb:PutItem
              Resource: !Sub "${T.Arn}/index/*"
"#;

/// AWS SAM Developer Guide, `AWS::Serverless::Function` `Policies`: policy
/// templates, AWS managed policy names, inline documents, and `Fn::If`.
#[test]
fn sams_generated_role_holds_every_form_of_policies() {
    let r = &roles(SAM_FORMS, &[])["F"];
    assert_eq!(r.name, "roomcast-local-FRole");
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    assert!(allows(r, "dynamodb:GetItem", TABLE));
    assert!(allows(r, "dynamodb:Query", &format!("{TABLE}/index/byX")));
    assert!(!allows(r, "dynamodb:DeleteItem", TABLE));
    assert!(allows(r, "dynamodb:PutItem", TABLE));
    assert!(
        !allows(r, "dynamodb:PutItem", &format!("{TABLE}/index/x")),
        "the explicit deny"
    );
    // LambdaInvokePolicy covers the function and its versions and aliases.
    let fan = "arn:aws:lambda:us-east-1:000000000000:function:fan";
    assert!(allows(r, "lambda:InvokeFunction", fan));
    assert!(allows(r, "lambda:InvokeFunction", &format!("{fan}:live")));
    assert!(!allows(
        r,
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:000000000000:function:other"
    ));
    assert!(allows(
        r,
        "execute-api:ManageConnections",
        "arn:aws:execute-api:us-east-1:000000000000:abc/prod/POST/@connections/x"
    ));
    // The condition is false: the EventBridge template is not attached.
    let bus = "arn:aws:events:us-east-1:000000000000:event-bus/default";
    assert!(!allows(r, "events:PutEvents", bus));
    // A role without Policies has the basic execution role only.
    assert!(!allows(
        &roles(SAM_FORMS, &[])["Fanout"],
        "dynamodb:GetItem",
        TABLE
    ));
}

/// CloudFormation "Condition functions": `Fn::And`, `Fn::Not`,
/// `Fn::Equals` and `Condition` over parameter values.
#[test]
fn conditions_follow_parameter_overrides() {
    let r = &roles(SAM_FORMS, &[("Bus", "default")])["F"];
    assert!(allows(
        r,
        "events:PutEvents",
        "arn:aws:events:us-east-1:000000000000:event-bus/default"
    ));
    assert!(!allows(
        r,
        "events:PutEvents",
        "arn:aws:events:us-east-1:000000000000:event-bus/other"
    ));
}

const DECLARED: &str = r#"
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: t}
  Exec:
    Type: AWS::IAM::Role
    Properties:
      RoleName: exec
      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole, !Ref Shared]
      Policies:
        - PolicyName: own
          PolicyDocument:
            Statement: [{Effect: Allow, Action: "dynamodb:GetItem", Resource: !GetAtt T.Arn}]
      PermissionsBoundary: !Ref Boundary
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref Exec]
      PolicyDocument: {Statement: [{Effect: Allow, Action: "dynamodb:Query", Resource: "*"}]}
  Shared:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: {Statement: [{Effect: Allow, Action: "dynamodb:Scan", Resource: "*"}]}
  Boundary:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: {Statement: [{Effect: Allow, Action: ["dynamodb:GetItem", "dynamodb:Query"], Resource: "*"}]}
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b, CodeUri: x/, Role: !GetAtt Exec.Arn}
  Raw:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, Role: "arn:aws:iam::123456789012:role/elsewhere"}
"#;

/// A function with `Role` gets that role (SAM: "If this property is set,
/// Policies is ignored"), with the policies attached to it elsewhere in the
/// template and its permissions boundary.
#[test]
fn a_declared_role_gets_its_attached_policies_within_its_boundary() {
    let all = roles(DECLARED, &[]);
    let r = &all["F"];
    assert_eq!(r.name, "exec");
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    assert!(allows(r, "dynamodb:GetItem", TABLE));
    assert!(allows(r, "dynamodb:Query", TABLE), "the AWS::IAM::Policy");
    assert!(
        !allows(r, "dynamodb:Scan", TABLE),
        "allowed by the managed policy, not by the boundary"
    );
    // A role outside the template: nothing is allowed, and it is said why.
    let raw = &all["Raw"];
    assert!(!allows(raw, "dynamodb:GetItem", TABLE));
    assert!(
        raw.gaps[0].contains("not defined in the template"),
        "{:?}",
        raw.gaps
    );
}

#[test]
fn what_cannot_be_read_grants_nothing_and_is_named() {
    let text = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      CodeUri: x/
      Policies:
        - NoSuchPolicyTemplate: {TableName: t}
        - arn:aws:iam::aws:policy/SomeManagedPolicyTheEmulatorDoesNotKnow
        - DynamoDBCrudPolicy: {}
        - Statement: [{Effect: Maybe, Action: "*", Resource: "*"}]
        - Statement:
            - Effect: Allow
              Action: dynamodb:GetItem
              Resource: "*"
              Condition: {Bool: {aws:SecureTransport: "true"}}
"#;
    let r = &roles(text, &[])["F"];
    assert_eq!(r.gaps.len(), 5, "{:?}", r.gaps);
    assert!(r.gaps[4].contains("Condition"), "{:?}", r.gaps);
    assert!(r.gaps[0].contains("NoSuchPolicyTemplate"));
    assert!(r.gaps[1].contains("SomeManagedPolicyTheEmulatorDoesNotKnow"));
    assert!(r.gaps[2].contains("TableName"));
    assert!(!allows(r, "dynamodb:GetItem", TABLE));
}

const ROOMCAST: &str = include_str!("../../../template.yaml");
const ROOMCAST_TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/roomcast";

/// Every DynamoDB action the store's code calls, and which of them each of
/// Roomcast's functions is granted: exactly what its code makes (measured
/// by running every scenario as processes with the roles checked).
#[test]
fn roomcasts_roles_grant_exactly_the_calls_each_function_makes() {
    const ALL: &[&str] = &[
        "GetItem",
        "BatchGetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchWriteItem",
        "ConditionCheckItem",
        "Scan",
        "DescribeTable",
        "CreateTable",
    ];
    let expected: &[(&str, &[&str])] = &[
        ("AuthorizerFunction", &[]),
        (
            "ConnectFunction",
            &[
                "GetItem",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
            ],
        ),
        (
            "DisconnectFunction",
            &[
                "GetItem",
                "BatchGetItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
            ],
        ),
        (
            "MessageFunction",
            &[
                "GetItem",
                "BatchGetItem",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
                "ConditionCheckItem",
            ],
        ),
        (
            "PublishFunction",
            &[
                "GetItem",
                "BatchGetItem",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
                "ConditionCheckItem",
            ],
        ),
        (
            "FanoutFunction",
            &[
                "GetItem",
                "BatchGetItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
            ],
        ),
    ];
    let all = roles(ROOMCAST, &[]);
    for (function, granted) in expected {
        let role = &all[*function];
        assert!(role.gaps.is_empty(), "{function}: {:?}", role.gaps);
        let allowed: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|a| allows(role, &format!("dynamodb:{a}"), ROOMCAST_TABLE))
            .collect();
        assert_eq!(&allowed, granted, "{function}");
    }
    // Posting, invoking the fanout function: only the functions that fan out.
    let post = "arn:aws:execute-api:us-east-1:000000000000:gcuuqhkbn0/prod/POST/@connections/abc=";
    let fanout = "arn:aws:lambda:us-east-1:000000000000:function:roomcast-local-fanout";
    for (function, posts, invokes) in [
        ("AuthorizerFunction", false, false),
        ("ConnectFunction", false, false),
        ("DisconnectFunction", true, false),
        ("MessageFunction", true, true),
        ("PublishFunction", true, true),
        ("FanoutFunction", true, true),
    ] {
        let role = &all[function];
        assert_eq!(
            allows(role, "execute-api:ManageConnections", post),
            posts,
            "{function}"
        );
        assert_eq!(
            allows(role, "lambda:InvokeFunction", fanout),
            invokes,
            "{function}"
        );
    }
}

/// With events on (`EventBusName`), every function may put events on that
/// bus and on no other; with events off, none may.
#[test]
fn events_rights_follow_the_bus_parameter() {
    let bus = |name: &str| format!("arn:aws:events:us-east-1:000000000000:event-bus/{name}");
    for (function, role) in roles(ROOMCAST, &[]) {
        assert!(
            !allows(&role, "events:PutEvents", &bus("default")),
            "{function}"
        );
    }
    for (function, role) in roles(ROOMCAST, &[("EventBusName", "team-bus")]) {
        assert!(
            allows(&role, "events:PutEvents", &bus("team-bus")),
            "{function}"
        );
        assert!(
            !allows(&role, "events:PutEvents", &bus("default")),
            "{function}"
        );
    }
}

/// The README's `/roomcast/jwt-secret` and a name without a slash both
/// give the authorizer and the message function `ssm:GetParameter` on the
/// ARN SSM authorizes (AWS Systems Manager User Guide, "Working with
/// parameter hierarchies": `/a/b`'s ARN is `…:parameter/a/b`), and nothing
/// beside it. (SAM's policy templates: a `parameter/` form "shouldn't
/// contain a leading slash".)
#[test]
fn the_secrets_ssm_right_holds_with_and_without_a_leading_slash() {
    let arn = |path: &str| format!("arn:aws:ssm:us-east-1:000000000000:parameter{path}");
    for (name, path) in [
        ("/roomcast/jwt-secret", "/roomcast/jwt-secret"),
        ("roomcast-jwt", "/roomcast-jwt"),
    ] {
        let all = roles(ROOMCAST, &[("JwtSecretParameter", name)]);
        for function in ["AuthorizerFunction", "MessageFunction"] {
            let role = &all[function];
            assert!(
                allows(role, "ssm:GetParameter", &arn(path)),
                "{function} {name}"
            );
            assert!(
                !allows(role, "ssm:GetParameter", &arn("/other")),
                "{function} {name}"
            );
            assert!(
                !allows(role, "ssm:GetParameters", &arn(path)),
                "{function} {name}"
            );
        }
        assert!(!allows(
            &all["ConnectFunction"],
            "ssm:GetParameter",
            &arn(path)
        ));
    }
}
