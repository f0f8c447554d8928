//! The roles the emulator builds from SAM's forms, checked against the
//! roles samtranslator itself writes (the library `sam build` and `sam
//! deploy` transform templates with): each template is transformed by
//! samtranslator into plain CloudFormation (`AWS::Lambda::Function` and
//! its `AWS::IAM::Role`), and both forms must allow and refuse the same
//! calls, for every function and a probe of calls on every resource the
//! template names. A missing prerequisite fails loudly: the test needs
//! PyPI's aws-sam-translator (aws-sam-cli brings it) in the Python named
//! by `ROOMCAST_TEST_PYTHON`, as `bash infra/test.sh` sets up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::roles::of_functions;
use crate::template::Template;

/// Transforms each job's template with samtranslator, as `sam validate`
/// does (code locations replaced by S3 URIs first), and prints the results
/// as one JSON list.
const TRANSLATE: &str = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class ManagedPolicies:
    def load(self):
        return {}

out = []
for job in json.load(sys.stdin):
    template = yaml_parse(job["text"])
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"
    out.append(transform(template, job["parameters"], ManagedPolicies()))
print(json.dumps(out))
"#;

struct Job {
    name: &'static str,
    text: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const JOBS: &[Job] = &[
    Job {
        name: "template.yaml",
        text: include_str!("../../../template.yaml"),
        parameters: &[],
    },
    Job {
        name: "template.yaml, events and a secret",
        text: include_str!("../../../template.yaml"),
        parameters: &[
            ("EventBusName", "team-bus"),
            ("JwtSecretParameter", "/roomcast/jwt-secret"),
        ],
    },
    Job {
        name: "raw-apigatewayv2-template.yaml",
        text: include_str!("../../../tests/fixtures/raw-apigatewayv2-template.yaml"),
        parameters: &[("EventBusName", "default")],
    },
    Job {
        name: "node-chat",
        text: include_str!("../../../examples/node-chat/template.yaml"),
        parameters: &[],
    },
    Job {
        name: "python-chat",
        text: include_str!("../../../examples/python-chat/template.yaml"),
        parameters: &[],
    },
    Job {
        name: "events fixture",
        text: include_str!("../../../tests/fixtures/events/template.yaml"),
        parameters: &[],
    },
    Job {
        name: "iam fixture",
        text: include_str!("../../../tests/fixtures/iam/template.yaml"),
        parameters: &[],
    },
];

fn translate() -> Vec<String> {
    let python = std::env::var("ROOMCAST_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ROOMCAST_TEST_PYTHON is not set: this test transforms templates with samtranslator. \
             Run `bash infra/test.sh`, or `python3 -m venv .venv && .venv/bin/pip install aws-sam-cli` \
             and `export ROOMCAST_TEST_PYTHON=$PWD/.venv/bin/python`."
        )
    });
    let jobs: Vec<Value> = JOBS
        .iter()
        .map(|j| {
            let parameters: BTreeMap<&str, &str> = j.parameters.iter().copied().collect();
            json!({"text": j.text, "parameters": parameters})
        })
        .collect();
    let mut child = std::process::Command::new(&python)
        .args(["-c", TRANSLATE])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let input = serde_json::to_vec(&jobs).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "samtranslator failed (is aws-sam-cli installed in {python}? `{python} -m pip install aws-sam-cli`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.iter().map(Value::to_string).collect()
}

fn parse(text: &str, parameters: &[(&str, &str)]) -> Template {
    let overrides = parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Template::parse(text)
        .unwrap()
        .with_parameters(&overrides)
        .unwrap()
}

/// Calls on everything the template names: its tables (and their
/// indexes), functions, buses, the API's connections, SSM parameters,
/// plus resources it does not name.
fn probes(template: &Template) -> Vec<(String, String)> {
    let mut resources = vec!["*".to_owned()];
    let region = "arn:aws:dynamodb:us-east-1:000000000000";
    for t in template.tables().unwrap_or_default() {
        resources.push(format!("{region}:table/{}", t.name));
        resources.push(format!("{region}:table/{}/index/byRoom", t.name));
    }
    resources.push(format!("{region}:table/elsewhere"));
    for f in template.functions().unwrap_or_default() {
        let arn = format!(
            "arn:aws:lambda:us-east-1:000000000000:function:{}",
            f.function_name
        );
        resources.push(format!("{arn}:live"));
        resources.push(arn);
    }
    for bus in ["default", "team-bus", "roomcast-test"] {
        resources.push(format!(
            "arn:aws:events:us-east-1:000000000000:event-bus/{bus}"
        ));
    }
    if let Ok(api) = template.websocket_api() {
        for method in ["POST", "GET", "DELETE"] {
            resources.push(format!(
                "arn:aws:execute-api:us-east-1:000000000000:{}/{}/{method}/@connections/abc=",
                api.id, api.stage
            ));
        }
    }
    resources.push("arn:aws:ssm:us-east-1:000000000000:parameter/roomcast/jwt-secret".into());
    let actions = [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
        "lambda:InvokeFunction",
        "events:PutEvents",
        "execute-api:ManageConnections",
        "ssm:GetParameter",
        "sqs:SendMessage",
    ];
    let mut out = Vec::new();
    for a in actions {
        for r in &resources {
            out.push((a.to_owned(), r.clone()));
        }
    }
    out
}

#[test]
fn roles_are_what_samtranslator_writes() {
    let translated = translate();
    for (job, cfn) in JOBS.iter().zip(&translated) {
        let sam = parse(job.text, job.parameters);
        let plain = parse(cfn, job.parameters);
        let ours = of_functions(&sam, "us-east-1");
        let theirs = of_functions(&plain, "us-east-1");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{}: the same functions",
            job.name
        );
        let probes = probes(&sam);
        let mut allowed = 0;
        for (function, role) in &ours {
            let other = &theirs[function];
            assert!(
                other.gaps.is_empty(),
                "{} {function}: {:?}",
                job.name,
                other.gaps
            );
            for (action, resource) in &probes {
                let decision = role.decide(action, resource).is_ok();
                assert_eq!(
                    decision,
                    other.decide(action, resource).is_ok(),
                    "{} {function}: {action} on {resource}",
                    job.name
                );
                allowed += usize::from(decision);
            }
        }
        // Not two empty roles agreeing: each template grants something.
        assert!(allowed > 0, "{}: no probe was allowed", job.name);
    }
}
