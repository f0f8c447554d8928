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
    assert_eq!(
        publish.environment["ROOMCAST_CALLBACK_URL"],
        "https://WebSocketApi.execute-api.us-east-1.localhost/prod"
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
            crate::lambda::registry::BINARIES.contains(&f.binary.as_str()),
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
