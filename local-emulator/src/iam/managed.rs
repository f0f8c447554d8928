//! AWS managed policies the emulator knows, by name (`AmazonDynamoDBFullAccess`)
//! or ARN (`arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess`): the part of
//! each that reaches a service the emulator serves (AWS Managed Policy
//! Reference Guide). A managed policy it does not know grants nothing
//! here, and the emulator says so at start-up.

use serde_json::{Value as Json, json};

/// The known policies: (name, statements for the emulated services).
fn known(name: &str) -> Option<Json> {
    let statements = match name {
        // Logs, X-Ray, EC2 network interfaces, queue and stream polling by
        // the Lambda service: nothing a function's own call reaches here
        // with (the stream and queue pollers are Lambda's, not the code's).
        "AWSLambdaBasicExecutionRole"
        | "AWSLambdaVPCAccessExecutionRole"
        | "AWSXRayDaemonWriteAccess"
        | "AWSXrayWriteOnlyAccess"
        | "AWSLambdaSQSQueueExecutionRole"
        | "AWSLambdaKinesisExecutionRole"
        | "CloudWatchLambdaInsightsExecutionRolePolicy" => json!([]),
        "AWSLambdaDynamoDBExecutionRole" => json!([{
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
            "Resource": "*"
        }]),
        "AWSLambdaRole" => {
            json!([{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}])
        }
        "AWSLambda_FullAccess" => {
            json!([{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}])
        }
        "AmazonDynamoDBFullAccess" | "AmazonDynamoDBFullAccess_v2" => {
            json!([{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}])
        }
        "AmazonDynamoDBReadOnlyAccess" => json!([{
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem", "dynamodb:Describe*", "dynamodb:List*",
                "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PartiQLSelect"
            ],
            "Resource": "*"
        }]),
        "AmazonAPIGatewayInvokeFullAccess" => json!([{
            "Effect": "Allow",
            "Action": ["execute-api:Invoke", "execute-api:ManageConnections"],
            "Resource": "arn:aws:execute-api:*:*:*"
        }]),
        "AmazonEventBridgeFullAccess" => {
            json!([{"Effect": "Allow", "Action": "events:*", "Resource": "*"}])
        }
        "AmazonSSMReadOnlyAccess" => json!([{
            "Effect": "Allow",
            "Action": ["ssm:Describe*", "ssm:Get*", "ssm:List*"],
            "Resource": "*"
        }]),
        "AdministratorAccess" => json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
        "PowerUserAccess" => json!([{
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*"
        }]),
        _ => return None,
    };
    Some(json!({ "Statement": statements }))
}

/// The document of an AWS managed policy named by `name_or_arn`, if known.
pub(crate) fn lookup(name_or_arn: &str) -> Option<Json> {
    let name = match name_or_arn.strip_prefix("arn:") {
        // arn:{partition}:iam::aws:policy/{path}{name}
        Some(rest) => {
            let (_, policy) = rest.split_once(":iam::aws:policy/")?;
            policy.rsplit('/').next()?
        }
        None => name_or_arn,
    };
    known(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_found_by_name_and_by_arn() {
        assert!(lookup("AmazonDynamoDBFullAccess").is_some());
        assert!(
            lookup("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole").is_some()
        );
        assert_eq!(
            lookup("arn:aws:iam::aws:policy/AWSLambda_FullAccess"),
            lookup("AWSLambda_FullAccess")
        );
        // A customer managed policy is not an AWS managed one.
        assert!(lookup("arn:aws:iam::000000000000:policy/AmazonDynamoDBFullAccess").is_none());
        assert!(lookup("SomethingElse").is_none());
    }
}
