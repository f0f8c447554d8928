//! IAM as AWS enforces it, offline: a Python function calling AWS with
//! boto3 is refused what its role does not allow, with each service's
//! `AccessDeniedException` and IAM's message (IAM User Guide, "Troubleshoot
//! access denied error messages"; "Policy evaluation logic": what no
//! policy allows is implicitly denied), and allowed what it does. moto
//! enforces no IAM: without this check the same function works offline and
//! fails in AWS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::emulator::*;
use roomcast_emulator::{EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

fn prober(iam: bool) -> EmulatorConfig {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    config("tests/fixtures/iam/template.yaml")
        .python(python())
        .dynamodb(
            common::dynamodb_endpoint(),
            format!("unused-{suffix}"),
            true,
        )
        .parameter("AllowedTable", format!("iam-allowed-{suffix}"))
        .parameter("ForbiddenTable", format!("iam-forbidden-{suffix}"))
        .iam(iam)
}

/// What the prober got for `call`: `{"ok": true}` or the error's code,
/// message and HTTP status, as boto3 parsed them.
async fn probe(emu: &RunningEmulator, call: &str) -> Value {
    let lambda = lambda_client(emu).await;
    parse(&invoke(&lambda, "Prober", &json!({"call": call})).await)
}

fn denied(answer: &Value, status: u64, action: &str, resource: &str) {
    assert_eq!(answer["code"], "AccessDeniedException", "{answer}");
    assert_eq!(answer["status"], status, "{answer}");
    assert_eq!(
        answer["message"],
        format!(
            "User: arn:aws:sts::000000000000:assumed-role/roomcast-local-ProberRole/Prober is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
        ),
        "{answer}"
    );
}

#[tokio::test]
async fn calls_outside_the_functions_role_are_refused_as_aws_refuses_them() {
    let emu = start(prober(true)).await;
    let denials = emu.access_denials();
    // Allowed: DynamoDBReadPolicy on the table, GET on @connections (the
    // connection does not exist: past IAM, API Gateway says it is gone).
    assert_eq!(probe(&emu, "read").await, json!({"ok": true}));
    let get = probe(&emu, "get").await;
    assert_eq!(
        (get["code"].clone(), get["status"].clone()),
        (json!("GoneException"), json!(410))
    );
    // DynamoDB answers 400 with the coral AccessDeniedException.
    let write = probe(&emu, "write").await;
    let allowed_arn = arn_of(&write);
    denied(&write, 400, "dynamodb:PutItem", &allowed_arn);
    assert!(allowed_arn.starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/iam-allowed-"));
    let other = probe(&emu, "read-other").await;
    let forbidden_arn = arn_of(&other);
    denied(&other, 400, "dynamodb:GetItem", &forbidden_arn);
    assert!(forbidden_arn.contains(":table/iam-forbidden-"));
    // Lambda and API Gateway answer 403; EventBridge 400.
    denied(
        &probe(&emu, "invoke").await,
        403,
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:000000000000:function:Other",
    );
    denied(
        &probe(&emu, "put-events").await,
        400,
        "events:PutEvents",
        "arn:aws:events:us-east-1:000000000000:event-bus/default",
    );
    let api = roomcast_emulator::template::api_id_of("Api");
    denied(
        &probe(&emu, "post").await,
        403,
        "execute-api:ManageConnections",
        &format!(
            "arn:aws:execute-api:us-east-1:000000000000:{api}/test/POST/@connections/bm90LWEtY29ubmVjdGlvbg="
        ),
    );
    assert_eq!(denials.count(), 5, "{:?}", denials.recent());
    // The refusals are on the metrics too.
    assert!(
        metrics(&emu).await.contains("roomcast_iam_denied_total 5"),
        "{}",
        metrics(&emu).await
    );
}

/// The resource in an AccessDenied message (`… on resource: ARN because …`).
fn arn_of(answer: &Value) -> String {
    let message = answer["message"].as_str().unwrap_or_default();
    message
        .split(" on resource: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_owned()
}

/// `--no-iam`: the same calls reach the services (moto, the emulator's own
/// APIs), as they did before roles were checked.
#[tokio::test]
async fn without_the_check_the_same_calls_go_through() {
    let emu = start(prober(false)).await;
    assert_eq!(probe(&emu, "write").await, json!({"ok": true}));
    assert_eq!(probe(&emu, "read-other").await, json!({"ok": true}));
    assert_eq!(probe(&emu, "post").await["code"], "GoneException");
    assert_eq!(emu.access_denials().count(), 0);
}
