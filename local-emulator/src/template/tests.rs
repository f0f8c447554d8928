use super::*;

const ROOMCAST: &str = include_str!("../../../template.yaml");

#[test]
fn the_roomcast_template_yields_every_route() {
    let t = Template::parse(ROOMCAST).unwrap();
    let api = t.websocket_api().unwrap();
    assert_eq!(api.route_selection, "$request.body.action");
    assert_eq!(api.stage, "prod");
    let keys: Vec<&str> = api.routes.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["$connect", "$default", "$disconnect"]);
    let connect = &api.routes["$connect"];
    assert_eq!(connect.function.binary, "connect");
    let auth = connect.authorizer.as_ref().unwrap();
    assert_eq!(auth.function.binary, "authorizer");
    assert_eq!(
        auth.identity_sources,
        vec!["route.request.querystring.token"]
    );
    assert!(api.routes["$default"].returns_response);
    assert!(!api.routes["$disconnect"].returns_response);
    assert_eq!(api.routes["$default"].function.binary, "message");
    assert_eq!(api.routes["$default"].function.timeout_secs, 29);
}

#[test]
fn environments_merge_globals_and_evaluate_intrinsics() {
    let t = Template::parse(ROOMCAST)
        .unwrap()
        .with_table_name("local-table");
    let message = t.function("MessageFunction").unwrap();
    assert_eq!(message.environment["ROOMCAST_TABLE"], "local-table");
    assert_eq!(message.environment["ROOMCAST_RATE_PER_SEC"], "10");
    assert_eq!(message.environment["ROOMCAST_JWKS_URL"], "");
    let publish = t.function("PublishFunction").unwrap();
    // CloudFormation's `Ref` of an API is its id; `AWS::URLSuffix` is
    // amazonaws.com: the URL is the one the stack would have in AWS.
    assert_eq!(
        publish.environment["ROOMCAST_CALLBACK_URL"],
        format!(
            "https://{}.execute-api.us-east-1.amazonaws.com/prod",
            api_id_of("WebSocketApi")
        )
    );
}

#[test]
fn the_table_definition_comes_from_the_template() {
    let def = Template::parse(ROOMCAST)
        .unwrap()
        .table_definition()
        .unwrap();
    assert_eq!(
        def.keys,
        vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
    );
    assert_eq!(
        def.attributes,
        vec![("pk".into(), "S".into()), ("sk".into(), "S".into())]
    );
    assert_eq!(def.ttl_attribute.as_deref(), Some("expiresAt"));
}

/// AWS CloudFormation User Guide, "AWS::DynamoDB::Table": `TableName`
/// ("If you don't specify a name, AWS CloudFormation generates a unique
/// physical ID and uses that ID for the table name"), `KeySchema`,
/// `GlobalSecondaryIndexes`, `LocalSecondaryIndexes`,
/// `TimeToLiveSpecification`, `StreamSpecification`; `Ref` returns the
/// table name.
const APP_TABLES: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Connections:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-connections-${Stage}"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: connectionId, AttributeType: S}
        - {AttributeName: userId, AttributeType: S}
        - {AttributeName: at, AttributeType: N}
      KeySchema:
        - {AttributeName: connectionId, KeyType: HASH}
        - {AttributeName: at, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: byUser
          KeySchema: [{AttributeName: userId, KeyType: HASH}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [room]}
      LocalSecondaryIndexes:
        - IndexName: byConnectionUser
          KeySchema:
            - {AttributeName: connectionId, KeyType: HASH}
            - {AttributeName: userId, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Unnamed:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  OnConnect:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: nodejs20.x
      Handler: app.handler
      CodeUri: onconnect/
      Environment:
        Variables:
          TABLE_NAME: !Ref Connections
          OTHER: {Ref: Unnamed}
"#;

#[test]
fn every_table_of_the_template_keeps_its_own_name_and_shape() {
    let t = Template::parse(APP_TABLES)
        .unwrap()
        .with_table_name("ignored");
    let tables = t.tables().unwrap();
    assert_eq!(tables.len(), 2);
    let c = &tables[0];
    assert_eq!(
        (c.logical_id.as_str(), c.name.as_str()),
        ("Connections", "roomcast-local-connections-dev")
    );
    assert_eq!(
        c.definition.keys,
        vec![
            ("connectionId".into(), "HASH".into()),
            ("at".into(), "RANGE".into())
        ]
    );
    assert_eq!(c.definition.attributes.len(), 3);
    let gsi = &c.definition.global_indexes[0];
    assert_eq!(gsi.name, "byUser");
    assert_eq!(gsi.keys, vec![("userId".into(), "HASH".into())]);
    assert_eq!(gsi.projection, "INCLUDE");
    assert_eq!(gsi.non_key_attributes, vec!["room".to_owned()]);
    let lsi = &c.definition.local_indexes[0];
    assert_eq!(
        (lsi.name.as_str(), lsi.projection.as_str()),
        ("byConnectionUser", "KEYS_ONLY")
    );
    assert_eq!(c.definition.ttl_attribute.as_deref(), Some("ttl"));
    assert_eq!(
        c.definition.stream_view.as_deref(),
        Some("NEW_AND_OLD_IMAGES")
    );
    // No TableName: CloudFormation's generated name, without its random
    // suffix so that the next run finds the same table.
    assert_eq!(tables[1].name, "roomcast-local-Unnamed");
    assert!(tables[1].definition.global_indexes.is_empty());
    assert_eq!(tables[1].definition.stream_view, None);
    // Functions see the same names: Ref of a table is its name.
    let f = t.function("OnConnect").unwrap();
    assert_eq!(
        f.environment["TABLE_NAME"],
        "roomcast-local-connections-dev"
    );
    assert_eq!(f.environment["OTHER"], "roomcast-local-Unnamed");
    // `--table` names Roomcast's table only, and this template has none.
    assert_eq!(t.roomcast_table().unwrap(), None);
    assert!(t.table_definition().is_err());
}

#[test]
fn the_table_override_names_roomcasts_table_only() {
    let extra = "\nResources:\n  Extra:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: app-extra\n      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n      KeySchema: [{AttributeName: id, KeyType: HASH}]\n";
    let both = ROOMCAST.replacen("\nResources:\n", extra, 1);
    let t = Template::parse(&both).unwrap().with_table_name("chosen");
    let names: Vec<(String, String)> = t
        .tables()
        .unwrap()
        .into_iter()
        .map(|t| (t.logical_id, t.name))
        .collect();
    assert!(
        names.contains(&("Table".into(), "chosen".into())),
        "{names:?}"
    );
    assert!(
        names.contains(&("Extra".into(), "app-extra".into())),
        "{names:?}"
    );
    assert_eq!(t.roomcast_table().unwrap().unwrap().name, "chosen");
}

#[test]
fn an_api_id_is_ten_lowercase_letters_and_digits_and_stable() {
    let id = api_id_of("ChatApi");
    assert_eq!(id.len(), 10);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(id, api_id_of("ChatApi"));
    assert_ne!(id, api_id_of("OtherApi"));
    let t = Template::parse(ROOMCAST).unwrap();
    assert_eq!(t.websocket_api().unwrap().id, api_id_of("WebSocketApi"));
}

#[test]
fn long_form_intrinsics_parse_too() {
    let t = Template::parse(
        r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.type"}
  S:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: {Ref: Api}, StageName: {Ref: Stage}}
  R:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: {Ref: Api}
      RouteKey: $default
      Target: {"Fn::Join": ["/", ["integrations", {Ref: I}]]}
  I:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: {Ref: Api}
      IntegrationUri: {"Fn::Sub": "arn:${AWS::Partition}:apigateway:x:lambda:path/functions/${F.Arn}/invocations"}
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: echo}}
    Properties: {Timeout: 5}
"#,
    )
    .unwrap();
    let api = t.websocket_api().unwrap();
    assert_eq!(api.stage, "dev");
    assert_eq!(api.route_selection, "$request.body.type");
    assert_eq!(api.routes["$default"].function.binary, "echo");
}

#[test]
fn sams_websocket_api_reads_as_the_raw_resources_do() {
    let sam = Template::parse(ROOMCAST).unwrap().websocket_api().unwrap();
    let raw_text = include_str!("../../../tests/fixtures/raw-apigatewayv2-template.yaml");
    let raw = Template::parse(raw_text).unwrap().websocket_api().unwrap();
    assert_eq!(sam, raw);
    assert!(sam.routes["$connect"].authorizer.is_some());
    assert!(sam.routes["$default"].returns_response);
    assert!(!sam.routes["$disconnect"].returns_response);
    // samtranslator's default stage, and its refusals.
    let minimal = |extra: &str| {
        format!(
            "Resources:
  F: {{Type: AWS::Serverless::Function, Metadata: {{BuildProperties: {{Binary: message}}}}}}
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      RouteSelectionExpression: $request.body.action
      Routes: {{$default: {{FunctionArn: !GetAtt F.Arn}}}}
{extra}"
        )
    };
    let api = Template::parse(&minimal(""))
        .unwrap()
        .websocket_api()
        .unwrap();
    assert_eq!(api.stage, "default");
    let iam = minimal("      Auth: {AuthType: AWS_IAM}\n");
    let err = Template::parse(&iam).unwrap().websocket_api().unwrap_err();
    assert!(err.to_string().contains("AWS_IAM"), "{err}");
    let no_connect = minimal("      Auth: {AuthType: CUSTOM, AuthArn: !GetAtt F.Arn}\n");
    let err = Template::parse(&no_connect)
        .unwrap()
        .websocket_api()
        .unwrap_err();
    assert!(err.to_string().contains("$connect"), "{err}");
}

#[test]
fn broken_templates_say_what_is_wrong() {
    let err = Template::parse("Resources: [").unwrap_err();
    assert!(matches!(err, TemplateError::Yaml(_)), "{err}");
    assert!(
        Template::parse("Foo: 1")
            .unwrap_err()
            .to_string()
            .contains("no Resources")
    );
    let no_api = Template::parse("Resources: {T: {Type: AWS::SNS::Topic}}").unwrap();
    assert!(
        no_api
            .websocket_api()
            .unwrap_err()
            .to_string()
            .contains("WEBSOCKET")
    );
    // A provided runtime needs a cargo binary or a CodeUri with a bootstrap.
    let no_program = Template::parse(
        "Resources: {F: {Type: AWS::Serverless::Function, Properties: {Runtime: provided.al2023}}}",
    )
    .unwrap();
    let err = no_program.function("F").unwrap_err().to_string();
    assert!(
        err.contains("F") && err.contains("Binary") && err.contains("CodeUri"),
        "{err}"
    );
    let err = Template::load(Path::new("/nonexistent/template.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/template.yaml"));
}

#[test]
fn every_function_in_the_template_maps_to_a_binary_that_exists() {
    let functions = Template::parse(ROOMCAST).unwrap().functions().unwrap();
    let mut binaries: Vec<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
    binaries.sort_unstable();
    assert_eq!(
        binaries,
        vec![
            "authorizer",
            "connect",
            "disconnect",
            "fanout",
            "message",
            "publish"
        ]
    );
    let bin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
    for f in &functions {
        assert!(
            roomcast_aws::in_process::BINARIES.contains(&f.binary.as_str()),
            "{} ({}) has no in-process handler",
            f.logical_id,
            f.binary
        );
        assert!(
            bin_dir.join(format!("{}.rs", f.binary)).is_file(),
            "{} has no Lambda main",
            f.binary
        );
    }
}

/// CloudFormation "Condition functions": conditions over parameters, and a
/// resource whose `Condition` is false is not created.
#[test]
fn conditions_are_evaluated_and_decide_which_resources_exist() {
    let text = r#"
Parameters:
  Mode: {Type: String, Default: dev}
  Bus: {Type: String, Default: ""}
Conditions:
  IsProd: !Equals [!Ref Mode, prod]
  HasBus: !Not [!Equals [!Ref Bus, ""]]
  ProdWithBus: !And [!Condition IsProd, !Condition HasBus]
  Either: {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "HasBus"}]}
  Loop: !Condition Loop
Resources:
  Always:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.b
      CodeUri: x/
      Environment:
        Variables:
          PICK: !If [ProdWithBus, both, !If [Either, one, none]]
  ProdOnly:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {Runtime: python3.12, Handler: a.b, CodeUri: x/}
"#;
    let with = |pairs: &[(&str, &str)]| {
        let overrides = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Template::parse(text)
            .unwrap()
            .with_parameters(&overrides)
            .unwrap()
    };
    let pick = |t: &Template| t.function("Always").unwrap().environment["PICK"].clone();
    let dev = with(&[]);
    assert_eq!(pick(&dev), "none");
    assert_eq!(dev.functions().unwrap().len(), 1, "ProdOnly is not created");
    assert!(!dev.condition("Loop"), "a loop is no condition");
    let prod = with(&[("Mode", "prod")]);
    assert_eq!(pick(&prod), "one");
    assert_eq!(prod.functions().unwrap().len(), 2);
    assert_eq!(pick(&with(&[("Mode", "prod"), ("Bus", "b")])), "both");
}

/// Each resource type's "Return values" (CloudFormation resource
/// reference): `Ref` of a function is its name, `Fn::GetAtt … Arn` its ARN.
#[test]
fn refs_and_arns_are_what_cloudformation_returns() {
    let text = r#"
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: chat}
  Q:
    Type: AWS::SQS::Queue
  R:
    Type: AWS::IAM::Role
    Properties: {RoleName: exec}
  F:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: fn-name
      Runtime: python3.12
      Handler: a.b
      CodeUri: x/
      Environment:
        Variables:
          FN: !Ref F
          FN_ARN: !GetAtt F.Arn
          TABLE_ARN: !GetAtt T.Arn
          QUEUE_ARN: !GetAtt Q.Arn
          QUEUE_URL: !Ref Q
          ROLE_ARN: !GetAtt R.Arn
"#;
    let t = Template::parse(text).unwrap().with_region("eu-west-1");
    let env = t.function("F").unwrap().environment;
    assert_eq!(env["FN"], "fn-name");
    assert_eq!(
        env["FN_ARN"],
        "arn:aws:lambda:eu-west-1:000000000000:function:fn-name"
    );
    assert_eq!(
        env["TABLE_ARN"],
        "arn:aws:dynamodb:eu-west-1:000000000000:table/chat"
    );
    assert_eq!(
        env["QUEUE_ARN"],
        "arn:aws:sqs:eu-west-1:000000000000:roomcast-local-Q"
    );
    assert_eq!(
        env["QUEUE_URL"],
        "https://sqs.eu-west-1.amazonaws.com/000000000000/roomcast-local-Q"
    );
    assert_eq!(env["ROLE_ARN"], "arn:aws:iam::000000000000:role/exec");
    // Lambda's AWS_LAMBDA_LOG_GROUP_NAME: the LoggingConfig's group, else
    // /aws/lambda/{name}.
    assert_eq!(t.function("F").unwrap().log_group, "/aws/lambda/fn-name");
    let roomcast = Template::parse(ROOMCAST).unwrap();
    assert_eq!(
        roomcast.function("AuthorizerFunction").unwrap().log_group,
        "/roomcast/roomcast-local/authorizer"
    );
}

/// `ReservedConcurrentExecutions: !If [HasFanoutReservation, …, NoValue]`:
/// no reservation by default, the parameter's value when one is given.
#[test]
fn the_fanout_reservation_follows_its_parameter() {
    let fanout = |t: Template| t.function("FanoutFunction").unwrap().reserved_concurrency;
    assert_eq!(fanout(Template::parse(ROOMCAST).unwrap()), None);
    let overrides = [("FanoutConcurrency".to_owned(), "10".to_owned())].into();
    let reserved = Template::parse(ROOMCAST)
        .unwrap()
        .with_parameters(&overrides)
        .unwrap();
    assert_eq!(fanout(reserved), Some(10));
}
