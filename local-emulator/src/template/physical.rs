//! What `!Ref` and `!GetAtt` of a resource evaluate to: the physical names
//! and ARNs CloudFormation would give (each resource type's "Return
//! values" in the CloudFormation resource reference), in the local stack's
//! account and region. A name CloudFormation would generate
//! (`{stack}-{logical id}-{random}`) is taken without the random suffix, so
//! that it is the same on every run.

use serde_yaml_ng::Value;

use super::{ACCOUNT, Template, dynamodb_tables::STACK_NAME};

impl Template {
    /// `!Ref` of resource `id`, for the types whose `Ref` is not their
    /// logical id offline; `None` for the others.
    pub(super) fn physical_ref(&self, id: &str, r: &Value) -> Option<String> {
        let kind = r.get("Type").and_then(Value::as_str)?;
        Some(match kind {
            "AWS::DynamoDB::Table" => self.table_name_of(id, r),
            "AWS::ApiGatewayV2::Api" | "AWS::Serverless::WebSocketApi" => super::api_id_of(id),
            // A bus's, a function's and a role's `Ref` is its name.
            "AWS::Events::EventBus" => self.named(r, "Name").unwrap_or_else(|| id.to_owned()),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => self.function_name_of(id, r),
            "AWS::IAM::Role" => self.role_name_of(id, r),
            "AWS::SQS::Queue" => format!(
                "https://sqs.{}.amazonaws.com/{ACCOUNT}/{}",
                self.region,
                self.queue_name_of(id, r)
            ),
            "AWS::SNS::Topic" => self.arn("sns", &self.generated(r, "TopicName", id)),
            "AWS::Logs::LogGroup" => self.generated(r, "LogGroupName", id),
            "AWS::IAM::ManagedPolicy" => format!(
                "arn:aws:iam::{ACCOUNT}:policy/{}",
                self.generated(r, "ManagedPolicyName", id)
            ),
            _ => return None,
        })
    }

    /// `!GetAtt id.attr`: the ARN (and the other attributes a policy or a
    /// target names) of the template's resources; for anything else a
    /// local placeholder that names the resource.
    pub(crate) fn attribute(&self, id: &str, attr: &str) -> String {
        let placeholder = || format!("arn:roomcast-local:{id}:{attr}");
        let Some(r) = self.resource(id) else {
            return placeholder();
        };
        let kind = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        match (kind, attr) {
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => self.arn(
                "lambda",
                &format!("function:{}", self.function_name_of(id, r)),
            ),
            ("AWS::DynamoDB::Table", "Arn") => {
                self.arn("dynamodb", &format!("table/{}", self.table_name_of(id, r)))
            }
            ("AWS::SQS::Queue", "Arn") => self.arn("sqs", &self.queue_name_of(id, r)),
            ("AWS::SQS::Queue", "QueueName") => self.queue_name_of(id, r),
            ("AWS::SQS::Queue", "QueueUrl") => self.physical_ref(id, r).unwrap_or_else(placeholder),
            ("AWS::SNS::Topic", "TopicArn") => self.physical_ref(id, r).unwrap_or_else(placeholder),
            ("AWS::SNS::Topic", "TopicName") => self.generated(r, "TopicName", id),
            ("AWS::Events::EventBus", "Arn") => {
                let name = self.named(r, "Name").unwrap_or_else(|| id.to_owned());
                self.arn("events", &format!("event-bus/{name}"))
            }
            ("AWS::Events::EventBus", "Name") => {
                self.named(r, "Name").unwrap_or_else(|| id.to_owned())
            }
            ("AWS::IAM::Role", "Arn") => {
                format!("arn:aws:iam::{ACCOUNT}:role/{}", self.role_name_of(id, r))
            }
            ("AWS::IAM::Role", "RoleId") => format!("AROA{}", id.to_uppercase()),
            ("AWS::Logs::LogGroup", "Arn") => {
                let name = self.generated(r, "LogGroupName", id);
                self.arn("logs", &format!("log-group:{name}:*"))
            }
            _ => placeholder(),
        }
    }

    /// `arn:aws:{service}:{region}:{account}:{resource}`.
    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{}:{ACCOUNT}:{resource}", self.region)
    }

    fn named(&self, r: &Value, property: &str) -> Option<String> {
        self.prop(r, property).and_then(|v| self.eval(v))
    }

    /// A name property, else the name CloudFormation generates.
    fn generated(&self, r: &Value, property: &str, id: &str) -> String {
        self.named(r, property)
            .unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
    }

    /// `FunctionName`, else the logical id (the emulator's name for it:
    /// short, and what the Invoke API also accepts).
    pub(crate) fn function_name_of(&self, id: &str, r: &Value) -> String {
        self.named(r, "FunctionName")
            .unwrap_or_else(|| id.to_owned())
    }

    /// `RoleName`, else the name CloudFormation generates.
    pub(crate) fn role_name_of(&self, id: &str, r: &Value) -> String {
        self.generated(r, "RoleName", id)
    }

    fn queue_name_of(&self, id: &str, r: &Value) -> String {
        self.generated(r, "QueueName", id)
    }
}
