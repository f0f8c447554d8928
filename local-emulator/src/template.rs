//! Reads a SAM/CloudFormation template: the WebSocket API's routes, its
//! authorizer, the stage, the functions behind them and the table.
//!
//! Short-form tags (`!Ref`, `!Sub`, `!GetAtt`, `!Join`, `!If`, `!Not`,
//! `!Equals`) and their long forms (`Fn::Sub`, ...) are evaluated with
//! parameter defaults. A `!Ref` to a resource yields its logical id, and
//! `!GetAtt X.Arn` yields a local ARN naming X, which is how a route's
//! integration URI leads back to its function.

use std::collections::BTreeMap;
use std::path::Path;

use roomcast_aws::dynamodb::TableDefinition;
use serde_yaml_ng::Value;

/// Why a template could not be used. Each says what to fix in it.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid YAML.
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// Valid YAML, but something the emulator needs is missing or wrong.
    #[error("template: {0}")]
    Invalid(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}

/// A function, as the emulator needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The logical id (`MessageFunction`).
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the key into the handler registry
    /// and the cargo binary to run; empty when the function has none
    /// (Python, Node).
    pub binary: String,
    /// `FunctionName`, else the logical id: the name in its ARN and in
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `Runtime` (function, else Globals): `provided.al2023`, `python3.12`…
    pub runtime: String,
    /// `Handler` (function, else Globals): `_HANDLER`.
    pub handler: String,
    /// `CodeUri`, relative to the template: `LAMBDA_TASK_ROOT`.
    pub code_uri: String,
    /// `MemorySize`, MB (function, else Globals, else 128).
    pub memory_mb: u64,
    /// `ReservedConcurrentExecutions`, if set.
    pub reserved_concurrency: Option<usize>,
    /// Globals' and the function's `Environment.Variables`, evaluated; a
    /// variable whose value cannot be evaluated offline is left out.
    pub environment: BTreeMap<String, String>,
    /// `Timeout`, seconds (function, else Globals, else 3).
    pub timeout_secs: u64,
    /// `Architectures` (function, else Globals): `x86_64` (Lambda's
    /// default) or `arm64`.
    pub architecture: String,
    /// The log group it logs to: `LoggingConfig.LogGroup`, else Lambda's
    /// `/aws/lambda/{function name}` (`AWS_LAMBDA_LOG_GROUP_NAME`).
    pub log_group: String,
}

/// The account id of the local stack: `AWS::AccountId`, and the account
/// in every ARN the emulator makes.
pub const ACCOUNT: &str = "000000000000";

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    parameters: BTreeMap<String, String>,
    /// Every declared parameter, with a default or not.
    declared: Vec<String>,
    resources: serde_yaml_ng::Mapping,
    /// The `Conditions` section (`conditions`).
    conditions: serde_yaml_ng::Mapping,
    globals: Value,
    /// What `!Ref` of Roomcast's table evaluates to (`--table`); other
    /// tables keep their own names (`dynamodb_tables`).
    table_name: String,
    /// What `AWS::Region` evaluates to: the region the functions run in.
    region: String,
}

impl Template {
    /// Reads and parses a template file.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Value = serde_yaml_ng::from_str(text)?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| invalid("no Resources section"))?;
        let mut parameters = BTreeMap::new();
        let mut declared = Vec::new();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                declared.extend(name.as_str().map(str::to_owned));
                if let (Some(name), Some(default)) =
                    (name.as_str(), spec.get("Default").and_then(scalar))
                {
                    parameters.insert(name.to_owned(), default);
                }
            }
        }
        Ok(Self {
            parameters,
            declared,
            resources,
            conditions: doc
                .get("Conditions")
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default(),
            globals: doc.get("Globals").cloned().unwrap_or(Value::Null),
            table_name: "roomcast".into(),
            region: "us-east-1".into(),
        })
    }

    /// Sets the name `!Ref` of Roomcast's table evaluates to.
    pub fn with_table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Sets the region `AWS::Region` evaluates to. One stack has one
    /// region: the functions' `AWS_REGION` and the ARNs in events use the
    /// same one. Default `us-east-1`.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Replaces parameter values, as `sam deploy --parameter-overrides`
    /// does. A name the template does not declare is an error, so a typo
    /// is not silently ignored.
    pub fn with_parameters(
        mut self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        for (name, value) in overrides {
            if !self.declared.contains(name) {
                return Err(invalid(format!(
                    "parameter override {name}: the template declares no such parameter"
                )));
            }
            self.parameters.insert(name.clone(), value.clone());
        }
        Ok(self)
    }

    /// Resources of a type that the stack creates (their `Condition`, if
    /// any, holds), as (logical id, resource).
    pub(crate) fn of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources.iter().filter_map(move |(id, r)| {
            (r.get("Type").and_then(Value::as_str) == Some(kind) && self.created(r))
                .then(|| id.as_str().map(|id| (id, r)))?
        })
    }

    pub(crate) fn resource(&self, id: &str) -> Option<&Value> {
        self.resources.get(id)
    }

    pub(crate) fn prop<'a>(&self, resource: &'a Value, name: &str) -> Option<&'a Value> {
        resource.get("Properties").and_then(|p| p.get(name))
    }

    /// A property of `Globals.Function`.
    pub(crate) fn global_function(&self, name: &str) -> Option<&Value> {
        self.globals.get("Function").and_then(|g| g.get(name))
    }

    /// Evaluates an intrinsic-bearing value to a string, if it can be
    /// evaluated offline.
    pub fn eval(&self, v: &Value) -> Option<String> {
        match v {
            Value::Tagged(t) => self.intrinsic(&t.tag.to_string(), &t.value),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next()?;
                let k = k.as_str()?;
                if k == "Ref" || k.starts_with("Fn::") {
                    self.intrinsic(k, inner)
                } else {
                    None
                }
            }
            other => scalar(other),
        }
    }

    fn intrinsic(&self, tag: &str, v: &Value) -> Option<String> {
        match tag.trim_start_matches('!').trim_start_matches("Fn::") {
            "Ref" => self.reference(v.as_str()?),
            "GetAtt" => {
                let (id, attr) = match v {
                    Value::String(s) => s.split_once('.')?,
                    Value::Sequence(seq) => (seq.first()?.as_str()?, seq.get(1)?.as_str()?),
                    _ => return None,
                };
                Some(self.attribute(id, attr))
            }
            "Sub" => {
                let (text, vars) = match v {
                    Value::String(s) => (s.as_str(), None),
                    Value::Sequence(seq) => (
                        seq.first()?.as_str()?,
                        seq.get(1).and_then(Value::as_mapping),
                    ),
                    _ => return None,
                };
                self.substitute(text, vars)
            }
            "Join" => {
                let seq = v.as_sequence()?;
                let sep = seq.first()?.as_str()?;
                let parts: Option<Vec<String>> = seq
                    .get(1)?
                    .as_sequence()?
                    .iter()
                    .map(|p| self.eval(p))
                    .collect();
                Some(parts?.join(sep))
            }
            "If" => {
                let seq = v.as_sequence()?;
                // Conditions are evaluated as "true" only when they can be and are.
                let branch = if self.condition(seq.first()?.as_str()?) {
                    seq.get(1)?
                } else {
                    seq.get(2)?
                };
                self.eval(branch)
            }
            _ => None,
        }
    }

    /// What `!Ref name` evaluates to.
    pub(crate) fn reference(&self, name: &str) -> Option<String> {
        if let Some(p) = self.parameters.get(name) {
            return Some(p.clone());
        }
        match name {
            "AWS::Region" => return Some(self.region.clone()),
            "AWS::AccountId" => return Some(ACCOUNT.into()),
            "AWS::Partition" => return Some("aws".into()),
            "AWS::StackName" => return Some(dynamodb_tables::STACK_NAME.into()),
            "AWS::URLSuffix" => return Some("amazonaws.com".into()),
            "AWS::NoValue" => return None,
            _ => {}
        }
        let r = self.resource(name)?;
        Some(
            self.physical_ref(name, r)
                .unwrap_or_else(|| name.to_owned()),
        )
    }

    fn substitute(&self, text: &str, vars: Option<&serde_yaml_ng::Mapping>) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}')?;
            let name = &after[..end];
            let value = match vars.and_then(|m| m.get(name)) {
                Some(v) => self.eval(v)?,
                None => match name.split_once('.') {
                    Some((id, attr)) => self.attribute(id, attr),
                    None => self.reference(name)?,
                },
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// The function named by an integration or authorizer URI
    /// (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`)
    /// or by its ARN alone.
    pub(crate) fn function_in_uri(&self, uri: &str) -> Result<FunctionSpec, TemplateError> {
        let names = |arn: &str| {
            uri.match_indices(arn).any(|(at, _)| {
                matches!(uri[at + arn.len()..].chars().next(), None | Some('/' | ':'))
            })
        };
        let id = self
            .of_type("AWS::Serverless::Function")
            .map(|(id, _)| id)
            .find(|id| names(&self.attribute(id, "Arn")))
            .ok_or_else(|| invalid(format!("no AWS::Serverless::Function matches URI {uri}")))?;
        self.function(id)
    }

    /// Every `AWS::Serverless::Function`, routed or not (e.g. `publish`).
    pub fn functions(&self) -> Result<Vec<FunctionSpec>, TemplateError> {
        self.of_type("AWS::Serverless::Function")
            .map(|(id, _)| self.function(id))
            .collect()
    }

    /// Points values that name this template's API by its execute-api URL
    /// (`https://<Api>.execute-api.<region>.<suffix>/<stage>`, as a
    /// callback URL would) at the emulator's `base` (`http://host:port`)
    /// instead: locally, the emulator is that API.
    pub fn localize(&self, spec: &mut FunctionSpec, base: &str) {
        let apis: Vec<String> = self
            .of_type("AWS::ApiGatewayV2::Api")
            .chain(self.of_type("AWS::Serverless::WebSocketApi"))
            .map(|(id, _)| api_id_of(id))
            .collect();
        for value in spec.environment.values_mut() {
            let Some(rest) = value.strip_prefix("https://") else {
                continue;
            };
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let ours = host
                .split_once(".execute-api.")
                .is_some_and(|(id, _)| apis.iter().any(|a| a == id));
            if ours {
                *value = if path.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}/{path}")
                };
            }
        }
    }

    /// Reads one function.
    pub fn function(&self, id: &str) -> Result<FunctionSpec, TemplateError> {
        let r = self
            .resource(id)
            .ok_or_else(|| invalid(format!("no resource {id}")))?;
        let binary = r
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let global_fn = self.globals.get("Function");
        // A function's property, else the Globals' one.
        let setting = |name: &str| {
            self.prop(r, name)
                .or_else(|| global_fn.and_then(|g| g.get(name)))
        };
        let text = |name: &str| setting(name).and_then(|v| self.eval(v));
        let runtime = text("Runtime").unwrap_or_else(|| "provided.al2023".into());
        if binary.is_empty() && runtime.starts_with("provided") && text("CodeUri").is_none() {
            return Err(invalid(format!(
                "function {id} has Runtime {runtime} but neither Metadata.BuildProperties.Binary nor CodeUri"
            )));
        }
        let mut environment = BTreeMap::new();
        for source in [global_fn, r.get("Properties")].into_iter().flatten() {
            if let Some(vars) = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
            {
                for (k, v) in vars {
                    if let Some(k) = k.as_str() {
                        match self.eval(v) {
                            Some(value) => environment.insert(k.to_owned(), value),
                            None => environment.remove(k),
                        };
                    }
                }
            }
        }
        // Numbers may be parameters (`!Ref`) or conditional (`!If`).
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        let timeout = number("Timeout").unwrap_or(3);
        let function_name = text("FunctionName").unwrap_or_else(|| id.to_owned());
        let log_group = setting("LoggingConfig")
            .and_then(|c| c.get("LogGroup"))
            .and_then(|g| self.eval(g))
            .unwrap_or_else(|| format!("/aws/lambda/{function_name}"));
        Ok(FunctionSpec {
            logical_id: id.to_owned(),
            log_group,
            binary: binary.to_owned(),
            function_name,
            handler: text("Handler").unwrap_or_default(),
            code_uri: text("CodeUri").unwrap_or_else(|| ".".into()),
            memory_mb: number("MemorySize").unwrap_or(128),
            reserved_concurrency: number("ReservedConcurrentExecutions")
                .and_then(|n| usize::try_from(n).ok()),
            runtime,
            environment,
            timeout_secs: timeout,
            architecture: setting("Architectures")
                .and_then(Value::as_sequence)
                .and_then(|a| a.first())
                .and_then(|a| self.eval(a))
                .unwrap_or_else(|| "x86_64".into()),
        })
    }

    /// Roomcast's table's definition (the table its functions get as
    /// `ROOMCAST_TABLE`).
    pub fn table_definition(&self) -> Result<TableDefinition, TemplateError> {
        self.roomcast_table()?.map(|t| t.definition).ok_or_else(|| {
            invalid("no AWS::DynamoDB::Table is given to Roomcast's functions as ROOMCAST_TABLE")
        })
    }
}

/// The id of the API whose logical id is `logical`: ten lowercase letters
/// and digits, the shape of an API Gateway API id (so that it is a valid
/// host name label in `{apiId}.execute-api.{region}.amazonaws.com`),
/// derived from the logical id so that it is the same on every run.
pub fn api_id_of(logical: &str) -> String {
    // FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in logical.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..10)
        .map(|_| {
            let d = DIGITS[(hash % 36) as usize];
            hash /= 36;
            char::from(d)
        })
        .collect()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

mod conditions;
mod dynamodb_tables;
mod json;
mod physical;
mod profile;

pub(crate) use json::Resolved;

pub use dynamodb_tables::TableSpec;
pub use profile::Profile;

pub(crate) mod options;
#[cfg(test)]
mod tests;
