//! SAM's policy templates (AWS SAM Developer Guide, "AWS SAM policy
//! templates"; samtranslator's `policy_templates.json`), expanded as SAM
//! expands them into a role's inline policy: `- DynamoDBCrudPolicy:
//! {TableName: !Ref Table}` becomes one statement per entry below, with
//! the parameters and the stack's partition, region and account filled in.
//!
//! Every template whose actions reach a service the emulator serves
//! (DynamoDB, Lambda, EventBridge, API Gateway, SSM) is spelled out here;
//! the others grant only actions of services that calls never reach here
//! through, so they are known by name and expand to nothing.

use serde_json::{Value as Json, json};

/// One statement of a template: its actions, and its resources with
/// `{Region}`, `{Account}` and `{Parameter}` placeholders.
struct Grant {
    actions: &'static [&'static str],
    resources: &'static [&'static str],
}

/// The templates spelled out, with their parameters.
const TEMPLATES: &[(&str, &[&str], &[Grant])] = &[
    (
        "DynamoDBCrudPolicy",
        &["TableName"],
        &[Grant {
            actions: &[
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
                "dynamodb:ConditionCheckItem",
            ],
            resources: &[TABLE, INDEXES],
        }],
    ),
    (
        "DynamoDBReadPolicy",
        &["TableName"],
        &[Grant {
            actions: &[
                "dynamodb:GetItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
            ],
            resources: &[TABLE, INDEXES],
        }],
    ),
    (
        "DynamoDBWritePolicy",
        &["TableName"],
        &[Grant {
            actions: &[
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
            ],
            resources: &[TABLE, INDEXES],
        }],
    ),
    (
        "DynamoDBReconfigurePolicy",
        &["TableName"],
        &[Grant {
            actions: &["dynamodb:UpdateTable"],
            resources: &[TABLE],
        }],
    ),
    (
        "DynamoDBBackupFullAccessPolicy",
        &["TableName"],
        &[
            Grant {
                actions: &[
                    "dynamodb:CreateBackup",
                    "dynamodb:DescribeContinuousBackups",
                ],
                resources: &[TABLE],
            },
            Grant {
                actions: &[
                    "dynamodb:DeleteBackup",
                    "dynamodb:DescribeBackup",
                    "dynamodb:ListBackups",
                ],
                resources: &[BACKUPS],
            },
        ],
    ),
    (
        "DynamoDBRestoreFromBackupPolicy",
        &["TableName"],
        &[
            Grant {
                actions: &["dynamodb:RestoreTableFromBackup"],
                resources: &[BACKUPS],
            },
            Grant {
                actions: &[
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:BatchWriteItem",
                ],
                resources: &[TABLE],
            },
        ],
    ),
    (
        "DynamoDBStreamReadPolicy",
        &["TableName", "StreamName"],
        &[
            Grant {
                actions: &[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ],
                resources: &[
                    "arn:aws:dynamodb:{Region}:{Account}:table/{TableName}/stream/{StreamName}",
                ],
            },
            Grant {
                actions: &["dynamodb:ListStreams"],
                resources: &["arn:aws:dynamodb:{Region}:{Account}:table/{TableName}/stream/*"],
            },
        ],
    ),
    (
        "LambdaInvokePolicy",
        &["FunctionName"],
        &[Grant {
            actions: &["lambda:InvokeFunction"],
            resources: &["arn:aws:lambda:{Region}:{Account}:function:{FunctionName}*"],
        }],
    ),
    (
        "EventBridgePutEventsPolicy",
        &["EventBusName"],
        &[Grant {
            actions: &["events:PutEvents"],
            resources: &["arn:aws:events:{Region}:{Account}:event-bus/{EventBusName}"],
        }],
    ),
    (
        "SSMParameterReadPolicy",
        &["ParameterName"],
        &[
            Grant {
                actions: &["ssm:DescribeParameters"],
                resources: &["*"],
            },
            Grant {
                actions: &[
                    "ssm:GetParameters",
                    "ssm:GetParameter",
                    "ssm:GetParametersByPath",
                ],
                resources: &["arn:aws:ssm:{Region}:{Account}:parameter/{ParameterName}"],
            },
        ],
    ),
    (
        "SSMParameterWithSlashPrefixReadPolicy",
        &["ParameterName"],
        &[
            Grant {
                actions: &["ssm:DescribeParameters"],
                resources: &["*"],
            },
            Grant {
                actions: &[
                    "ssm:GetParameters",
                    "ssm:GetParameter",
                    "ssm:GetParametersByPath",
                ],
                resources: &["arn:aws:ssm:{Region}:{Account}:parameter{ParameterName}"],
            },
        ],
    ),
    (
        "SQSSendMessagePolicy",
        &["QueueName"],
        &[Grant {
            actions: &["sqs:SendMessage*"],
            resources: &["arn:aws:sqs:{Region}:{Account}:{QueueName}"],
        }],
    ),
];

const TABLE: &str = "arn:aws:dynamodb:{Region}:{Account}:table/{TableName}";
const INDEXES: &str = "arn:aws:dynamodb:{Region}:{Account}:table/{TableName}/index/*";
const BACKUPS: &str = "arn:aws:dynamodb:{Region}:{Account}:table/{TableName}/backup/*";

/// SAM's other templates: their actions are all in services no call
/// reaches the emulator through, so they expand to no statement here.
const ELSEWHERE: &[&str] = &[
    "AMIDescribePolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
    "AWSSecretsManagerRotationPolicy",
    "AcmGetCertificatePolicy",
    "AthenaQueryPolicy",
    "CloudFormationDescribeStacksPolicy",
    "CloudWatchDashboardPolicy",
    "CloudWatchDescribeAlarmHistoryPolicy",
    "CloudWatchPutMetricPolicy",
    "CodeCommitCrudPolicy",
    "CodeCommitReadPolicy",
    "CodePipelineLambdaExecutionPolicy",
    "CodePipelineReadOnlyPolicy",
    "ComprehendBasicAccessPolicy",
    "CostExplorerReadOnlyPolicy",
    "EC2CopyImagePolicy",
    "EC2DescribePolicy",
    "EFSWriteAccessPolicy",
    "EKSDescribePolicy",
    "EcsRunTaskPolicy",
    "ElasticMapReduceAddJobFlowStepsPolicy",
    "ElasticMapReduceCancelStepsPolicy",
    "ElasticMapReduceModifyInstanceFleetPolicy",
    "ElasticMapReduceModifyInstanceGroupsPolicy",
    "ElasticMapReduceSetTerminationProtectionPolicy",
    "ElasticMapReduceTerminateJobFlowsPolicy",
    "ElasticsearchHttpPostPolicy",
    "FilterLogEventsPolicy",
    "FirehoseCrudPolicy",
    "FirehoseWritePolicy",
    "KMSDecryptPolicy",
    "KMSEncryptPolicy",
    "KMSEncryptPolicy_v2",
    "KinesisCrudPolicy",
    "KinesisStreamReadPolicy",
    "MobileAnalyticsWriteOnlyAccessPolicy",
    "OrganizationsListAccountsPolicy",
    "PinpointEndpointAccessPolicy",
    "PollyFullAccessPolicy",
    "RekognitionDetectOnlyPolicy",
    "RekognitionFacesManagementPolicy",
    "RekognitionFacesPolicy",
    "RekognitionLabelsPolicy",
    "RekognitionNoDataAccessPolicy",
    "RekognitionReadPolicy",
    "RekognitionWriteOnlyAccessPolicy",
    "Route53ChangeResourceRecordSetsPolicy",
    "S3CrudPolicy",
    "S3FullAccessPolicy",
    "S3ReadPolicy",
    "S3WritePolicy",
    "SESBulkTemplatedCrudPolicy",
    "SESBulkTemplatedCrudPolicy_v2",
    "SESCrudPolicy",
    "SESEmailTemplateCrudPolicy",
    "SESSendBouncePolicy",
    "SNSCrudPolicy",
    "SNSPublishMessagePolicy",
    "SQSPollerPolicy",
    "SageMakerCreateEndpointConfigPolicy",
    "SageMakerCreateEndpointPolicy",
    "ServerlessRepoReadWriteAccessPolicy",
    "StepFunctionsCallbackPolicy",
    "StepFunctionsExecutionPolicy",
    "StepFunctionsExecutionPolicy_v2",
    "TextractDetectAnalyzePolicy",
    "TextractGetResultPolicy",
    "TextractPolicy",
    "VPCAccessPolicy",
];

/// Why a template could not be expanded: the template says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// Not one of SAM's policy templates.
    #[error("{0} is not one of SAM's policy templates")]
    Unknown(String),
    /// A parameter the template needs is missing or not a string.
    #[error("policy template {template} needs the parameter {parameter}")]
    Parameter {
        template: String,
        parameter: &'static str,
    },
}

/// The policy document SAM writes for `name` with `parameters` (a JSON
/// object of resolved strings), in `region` and `account`.
pub(crate) fn expand(
    name: &str,
    parameters: &Json,
    region: &str,
    account: &str,
) -> Result<Json, TemplateError> {
    let Some((_, needs, grants)) = TEMPLATES.iter().find(|(n, ..)| *n == name) else {
        return if ELSEWHERE.contains(&name) {
            Ok(json!({"Statement": []}))
        } else {
            Err(TemplateError::Unknown(name.to_owned()))
        };
    };
    let mut values = vec![
        ("Region", region.to_owned()),
        ("Account", account.to_owned()),
    ];
    for parameter in *needs {
        let value = parameters
            .get(parameter)
            .and_then(|v| match v {
                Json::String(s) => Some(s.clone()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or(TemplateError::Parameter {
                template: name.to_owned(),
                parameter,
            })?;
        values.push((parameter, value));
    }
    let fill = |pattern: &str| {
        values.iter().fold(pattern.to_owned(), |s, (k, v)| {
            s.replace(&format!("{{{k}}}"), v)
        })
    };
    let statements: Vec<Json> = grants
        .iter()
        .map(|g| {
            json!({
                "Effect": "Allow",
                "Action": g.actions,
                "Resource": g.resources.iter().map(|r| fill(r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "Statement": statements }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crud_covers_the_table_and_its_indexes() {
        // SAM policy templates, DynamoDBCrudPolicy: "Gives create, read,
        // update, and delete permissions to an Amazon DynamoDB table."
        let doc = expand(
            "DynamoDBCrudPolicy",
            &json!({"TableName": "chat"}),
            "eu-west-1",
            "000000000000",
        )
        .unwrap();
        let s = &doc["Statement"][0];
        assert_eq!(
            s["Resource"][0],
            "arn:aws:dynamodb:eu-west-1:000000000000:table/chat"
        );
        assert_eq!(
            s["Resource"][1],
            "arn:aws:dynamodb:eu-west-1:000000000000:table/chat/index/*"
        );
        assert!(
            s["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("dynamodb:BatchGetItem"))
        );
    }

    #[test]
    fn the_two_ssm_templates_differ_by_the_slash() {
        // SAM: SSMParameterReadPolicy's ParameterName "shouldn't contain a
        // leading slash"; SSMParameterWithSlashPrefixReadPolicy's does.
        let plain = expand(
            "SSMParameterReadPolicy",
            &json!({"ParameterName": "a/b"}),
            "r",
            "1",
        )
        .unwrap();
        let slash = expand(
            "SSMParameterWithSlashPrefixReadPolicy",
            &json!({"ParameterName": "/a/b"}),
            "r",
            "1",
        )
        .unwrap();
        assert_eq!(
            plain["Statement"][1]["Resource"][0],
            "arn:aws:ssm:r:1:parameter/a/b"
        );
        assert_eq!(
            slash["Statement"][1]["Resource"][0],
            "arn:aws:ssm:r:1:parameter/a/b"
        );
    }

    #[test]
    fn unknown_templates_and_missing_parameters_are_named() {
        assert_eq!(
            expand("DynamoDBEverythingPolicy", &json!({}), "r", "1"),
            Err(TemplateError::Unknown("DynamoDBEverythingPolicy".into()))
        );
        assert!(matches!(
            expand("LambdaInvokePolicy", &json!({"Function": "x"}), "r", "1"),
            Err(TemplateError::Parameter {
                parameter: "FunctionName",
                ..
            })
        ));
        // A template for a service not emulated expands to nothing.
        assert_eq!(
            expand("S3ReadPolicy", &json!({"BucketName": "b"}), "r", "1").unwrap(),
            json!({"Statement": []})
        );
    }
}
