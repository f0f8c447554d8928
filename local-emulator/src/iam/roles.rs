//! Each function's execution role, read from the template as CloudFormation
//! and SAM would create it:
//! - an `AWS::Serverless::Function` without `Role` gets the role SAM
//!   generates (AWS SAM Developer Guide, `AWS::Serverless::Function`,
//!   `Policies`): `AWSLambdaBasicExecutionRole`, each entry of `Policies`
//!   (an inline document, a SAM policy template, an AWS managed policy by
//!   name or ARN, a customer managed policy by ARN), the policies SAM adds
//!   for `DeadLetterQueue` and `EventInvokeConfig` destinations, and
//!   `PermissionsBoundary`;
//! - a function with `Role` gets that `AWS::IAM::Role`: its `Policies`,
//!   `ManagedPolicyArns` and `PermissionsBoundary`, plus the
//!   `AWS::IAM::Policy`, `AWS::IAM::RolePolicy` and
//!   `AWS::IAM::ManagedPolicy` resources attached to it.
//!
//! `Fn::If` and `AWS::NoValue` are resolved with the stack's conditions.
//! What cannot be read is a gap: it grants nothing, and is logged.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use serde_yaml_ng::Value;

use super::evaluate::Role;
use super::policy::Policy;
use super::{managed, sam_templates};
use crate::template::{ACCOUNT, Resolved, Template};

/// SAM's generated roles are named `{stack}-{function}Role-{random}`;
/// offline without the random part.
const STACK: &str = "roomcast-local";

/// Every function's role, by logical id.
pub(crate) fn of_functions(template: &Template, region: &str) -> BTreeMap<String, Role> {
    let reader = Reader { template, region };
    let mut roles = BTreeMap::new();
    for kind in ["AWS::Serverless::Function", "AWS::Lambda::Function"] {
        for (id, r) in template.of_type(kind) {
            let role = match template.prop(r, "Role") {
                Some(role) => reader.declared(id, role),
                None if kind == "AWS::Serverless::Function" => reader.generated(id, r),
                None => reader.missing(id),
            };
            roles.insert(id.to_owned(), role);
        }
    }
    roles
}

struct Reader<'a> {
    template: &'a Template,
    region: &'a str,
}

impl Reader<'_> {
    /// SAM's generated role.
    fn generated(&self, id: &str, r: &Value) -> Role {
        let mut role = Role {
            name: format!("{STACK}-{id}Role"),
            policies: Vec::new(),
            boundary: None,
            gaps: Vec::new(),
        };
        self.attach(
            &mut role,
            &Json::String(
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole".into(),
            ),
        );
        self.destinations(id, r, &mut role);
        match self
            .template
            .prop(r, "Policies")
            .map(|p| self.template.resolve(p))
        {
            None | Some(Some(Resolved::NoValue)) => {}
            Some(None) => role
                .gaps
                .push(format!("{id}: Policies cannot be evaluated offline")),
            Some(Some(Resolved::Json(policies))) => {
                let items = match policies {
                    Json::Array(items) => items,
                    one => vec![one],
                };
                for (i, item) in items.iter().enumerate() {
                    self.sam_entry(id, i, item, &mut role);
                }
            }
        }
        let boundary = self
            .template
            .prop(r, "PermissionsBoundary")
            .or_else(|| self.template.global_function("PermissionsBoundary"));
        self.boundary(boundary, &mut role);
        role
    }

    /// One entry of SAM's `Policies`.
    fn sam_entry(&self, id: &str, i: usize, item: &Json, role: &mut Role) {
        let name = format!("{id}RolePolicy{i}");
        match item {
            Json::String(_) => self.attach(role, item),
            Json::Object(o) if o.contains_key("Statement") => self.inline(role, &name, item),
            Json::Object(o) if o.len() == 1 => {
                let (template, parameters) = o
                    .iter()
                    .next()
                    .map(|(k, v)| (k.as_str(), v))
                    .unwrap_or_default();
                match sam_templates::expand(template, parameters, self.region, ACCOUNT) {
                    Ok(doc) => self.inline(role, &format!("{name} ({template})"), &doc),
                    Err(e) => role.gaps.push(format!("{id}: Policies[{i}]: {e}")),
                }
            }
            other => role.gaps.push(format!(
                "{id}: Policies[{i}] is not a policy SAM accepts: {other}"
            )),
        }
    }

    /// The policies SAM adds for a dead-letter queue and for
    /// `EventInvokeConfig` destinations (the service uses the function's
    /// role to deliver there).
    fn destinations(&self, id: &str, r: &Value, role: &mut Role) {
        let mut targets = Vec::new();
        if let Some(Some(Resolved::Json(dlq))) = self
            .template
            .prop(r, "DeadLetterQueue")
            .map(|v| self.template.resolve(v))
        {
            targets.push((
                "DeadLetterQueue".to_owned(),
                dlq.get("Type").cloned(),
                dlq.get("TargetArn").cloned(),
            ));
        }
        let config = self
            .template
            .prop(r, "EventInvokeConfig")
            .and_then(|v| self.template.resolve(v));
        if let Some(Resolved::Json(config)) = config {
            for when in ["OnSuccess", "OnFailure"] {
                let d = &config["DestinationConfig"][when];
                if !d.is_null() {
                    targets.push((
                        format!("EventInvokeConfig{when}"),
                        d.get("Type").cloned(),
                        d.get("Destination").cloned(),
                    ));
                }
            }
        }
        for (what, kind, arn) in targets {
            let (Some(Json::String(kind)), Some(Json::String(arn))) = (kind, arn) else {
                continue;
            };
            let action = match kind.as_str() {
                "SQS" => "sqs:SendMessage",
                "SNS" => "sns:Publish",
                "Lambda" => "lambda:InvokeFunction",
                "EventBridge" => "events:PutEvents",
                _ => continue,
            };
            let doc =
                json!({"Statement": [{"Effect": "Allow", "Action": action, "Resource": arn}]});
            self.inline(role, &format!("{id}{what}{kind}Policy"), &doc);
        }
    }

    /// A role the function names with `Role`.
    fn declared(&self, id: &str, role: &Value) -> Role {
        let arn = self.template.eval(role).unwrap_or_default();
        let found = self
            .template
            .of_type("AWS::IAM::Role")
            .find(|(rid, _)| self.template.attribute(rid, "Arn") == arn);
        let Some((rid, r)) = found else {
            let name = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
            return Role {
                name,
                policies: Vec::new(),
                boundary: None,
                gaps: vec![format!(
                    "{id}: its Role {arn} is not defined in the template, so its rights are unknown here"
                )],
            };
        };
        let name = self.template.role_name_of(rid, r);
        let mut role = Role {
            name: name.clone(),
            policies: Vec::new(),
            boundary: None,
            gaps: Vec::new(),
        };
        if let Some(Some(Resolved::Json(Json::Array(inline)))) = self
            .template
            .prop(r, "Policies")
            .map(|p| self.template.resolve(p))
        {
            for p in &inline {
                let policy_name = p["PolicyName"].as_str().unwrap_or("inline").to_owned();
                self.inline(&mut role, &policy_name, &p["PolicyDocument"]);
            }
        }
        if let Some(Some(Resolved::Json(Json::Array(arns)))) = self
            .template
            .prop(r, "ManagedPolicyArns")
            .map(|p| self.template.resolve(p))
        {
            for arn in &arns {
                self.attach(&mut role, arn);
            }
        }
        self.attached_resources(&name, &mut role);
        self.boundary(self.template.prop(r, "PermissionsBoundary"), &mut role);
        role
    }

    /// `AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy` (by `Roles`) and
    /// `AWS::IAM::RolePolicy` (by `RoleName`) resources on role `name`.
    fn attached_resources(&self, name: &str, role: &mut Role) {
        let names_role = |v: Option<&Value>| match v.and_then(|v| self.template.resolve(v)) {
            Some(Resolved::Json(Json::Array(roles))) => roles.iter().any(|r| r == name),
            Some(Resolved::Json(Json::String(one))) => one == name,
            _ => false,
        };
        for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
            for (pid, p) in self.template.of_type(kind) {
                if names_role(self.template.prop(p, "Roles")) {
                    self.document(role, pid, p);
                }
            }
        }
        for (pid, p) in self.template.of_type("AWS::IAM::RolePolicy") {
            if names_role(self.template.prop(p, "RoleName")) {
                self.document(role, pid, p);
            }
        }
    }

    fn document(&self, role: &mut Role, id: &str, resource: &Value) {
        match self
            .template
            .prop(resource, "PolicyDocument")
            .and_then(|d| self.template.resolve(d))
        {
            Some(Resolved::Json(doc)) => self.inline(role, id, &doc),
            _ => role
                .gaps
                .push(format!("{id}: PolicyDocument cannot be evaluated offline")),
        }
    }

    /// A function whose role cannot be found (a raw function without one).
    fn missing(&self, id: &str) -> Role {
        Role {
            name: format!("{STACK}-{id}Role"),
            policies: Vec::new(),
            boundary: None,
            gaps: vec![format!("{id}: has no Role")],
        }
    }

    /// A managed policy by name or ARN: AWS's, or one the template defines.
    fn attach(&self, role: &mut Role, name_or_arn: &Json) {
        let Some(name_or_arn) = name_or_arn.as_str() else {
            role.gaps.push(format!(
                "a managed policy that is not a name or ARN: {name_or_arn}"
            ));
            return;
        };
        if let Some(doc) = managed::lookup(name_or_arn) {
            self.inline(role, name_or_arn, &doc);
            return;
        }
        if let Some((id, p)) = self.customer_managed(name_or_arn) {
            self.document(role, id, p);
            return;
        }
        role.gaps.push(format!(
            "managed policy {name_or_arn} is not known to the emulator: what it grants is missing here"
        ));
    }

    fn customer_managed(&self, arn: &str) -> Option<(&str, &Value)> {
        self.template
            .of_type("AWS::IAM::ManagedPolicy")
            .find(|(id, _)| self.template.reference(id).as_deref() == Some(arn))
    }

    fn inline(&self, role: &mut Role, name: &str, doc: &Json) {
        match Policy::parse(name, doc) {
            Ok(p) => {
                if p.statements.iter().any(|s| s.conditional) {
                    role.gaps.push(format!(
                        "{name} has a statement with a Condition, which the emulator does not evaluate: an Allow with one allows nothing here, a Deny with one denies"
                    ));
                }
                role.policies.push(p);
            }
            Err(e) => role.gaps.push(format!("{name}: {e}")),
        }
    }

    /// `PermissionsBoundary`: a managed policy. One that cannot be read
    /// becomes a boundary that allows nothing (refuse, not allow).
    fn boundary(&self, v: Option<&Value>, role: &mut Role) {
        let Some(arn) = v.and_then(|v| self.template.eval(v)) else {
            return;
        };
        let mut probe = Role {
            name: String::new(),
            policies: Vec::new(),
            boundary: None,
            gaps: Vec::new(),
        };
        self.attach(&mut probe, &Json::String(arn.clone()));
        let mut statements = Vec::new();
        for p in probe.policies {
            statements.extend(p.statements);
        }
        role.gaps.extend(probe.gaps);
        role.boundary = Some(Policy {
            name: format!("permissions boundary {arn}"),
            statements,
        });
    }
}
