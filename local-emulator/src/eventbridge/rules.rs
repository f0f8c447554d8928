//! The template's EventBridge rules: `AWS::Events::Rule` resources and SAM
//! functions' `EventBridgeRule` (or `CloudWatchEvent`) events, with their
//! buses (`AWS::Events::EventBus`, plus `default`).
//!
//! A rule whose pattern EventBridge would refuse is an error naming the
//! rule, so the mistake shows at start-up and not as a rule that never
//! fires. Targets that are the template's functions are run; others (SQS,
//! API destinations, …) are listed and skipped, with a warning.

use serde_json::Value as Json;
use serde_yaml_ng::Value;

use super::pattern::Pattern;
use crate::template::{Template, TemplateError, invalid};

/// The bus every account has.
pub const DEFAULT_BUS: &str = "default";

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// The rule's name (`Name`, else the logical id; for a SAM event,
    /// `{function}{event}`).
    pub name: String,
    /// The bus it listens on (a name).
    pub bus: String,
    /// What it matches.
    pub pattern: Pattern,
    /// Where matches go.
    pub targets: Vec<TargetSpec>,
}

/// Where a rule sends a matching event.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetSpec {
    /// One of the template's functions (logical id or function name).
    Function {
        /// The function.
        function: String,
        /// `Input`: this JSON instead of the event.
        input: Option<Json>,
        /// `InputPath`: this part of the event (`$.detail`).
        input_path: Option<String>,
    },
    /// Anything else: not run offline.
    Other {
        /// The target's ARN, as far as it evaluates.
        arn: String,
    },
}

impl Template {
    /// Every rule of the template, in a stable order.
    pub fn event_rules(&self) -> Result<Vec<RuleSpec>, TemplateError> {
        let mut rules = Vec::new();
        for (id, r) in self.of_type("AWS::Events::Rule") {
            let Some(pattern) = self.prop(r, "EventPattern") else {
                // A scheduled rule: no pattern, nothing to match offline.
                continue;
            };
            if self.prop(r, "State").and_then(|s| self.eval(s)).as_deref() == Some("DISABLED") {
                continue;
            }
            let name = self
                .prop(r, "Name")
                .and_then(|v| self.eval(v))
                .unwrap_or_else(|| id.to_owned());
            let targets = self
                .prop(r, "Targets")
                .and_then(Value::as_sequence)
                .map(|ts| ts.iter().map(|t| self.target(t)).collect())
                .unwrap_or_default();
            rules.push(RuleSpec {
                pattern: self.rule_pattern(&name, pattern)?,
                bus: self.bus_of(self.prop(r, "EventBusName")),
                name,
                targets,
            });
        }
        for (id, f) in self.of_type("AWS::Serverless::Function") {
            let Some(events) = self.prop(f, "Events").and_then(Value::as_mapping) else {
                continue;
            };
            for (event_name, event) in events {
                let kind = event.get("Type").and_then(Value::as_str);
                if !matches!(kind, Some("EventBridgeRule" | "CloudWatchEvent")) {
                    continue;
                }
                let props = event.get("Properties");
                let name = format!("{id}{}", event_name.as_str().unwrap_or_default());
                let Some(pattern) = props.and_then(|p| p.get("Pattern")) else {
                    continue;
                };
                let input = props
                    .and_then(|p| p.get("Input"))
                    .and_then(|v| self.eval(v));
                rules.push(RuleSpec {
                    pattern: self.rule_pattern(&name, pattern)?,
                    bus: self.bus_of(props.and_then(|p| p.get("EventBusName"))),
                    targets: vec![TargetSpec::Function {
                        function: id.to_owned(),
                        input: self.input_json(&name, input)?,
                        input_path: props
                            .and_then(|p| p.get("InputPath"))
                            .and_then(|v| self.eval(v)),
                    }],
                    name,
                });
            }
        }
        Ok(rules)
    }

    /// The names of the template's buses, `default` first.
    pub fn event_buses(&self) -> Vec<String> {
        let mut buses = vec![DEFAULT_BUS.to_owned()];
        for (id, b) in self.of_type("AWS::Events::EventBus") {
            let name = self
                .prop(b, "Name")
                .and_then(|v| self.eval(v))
                .unwrap_or_else(|| id.to_owned());
            if !buses.contains(&name) {
                buses.push(name);
            }
        }
        buses
    }

    /// A bus named by name or ARN; `default` when not given.
    fn bus_of(&self, v: Option<&Value>) -> String {
        let named = v.and_then(|v| self.eval(v)).unwrap_or_default();
        bus_name(&named).to_owned()
    }

    fn rule_pattern(&self, rule: &str, v: &Value) -> Result<Pattern, TemplateError> {
        // `EventPattern` is an object, or (CloudFormation allows it) JSON text.
        let json = match v {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| invalid(format!("rule {rule}: EventPattern is not JSON: {e}")))?,
            other => self.to_json(other),
        };
        Pattern::parse(&json).map_err(|e| invalid(format!("rule {rule}: {e}")))
    }

    fn input_json(&self, rule: &str, input: Option<String>) -> Result<Option<Json>, TemplateError> {
        input
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| invalid(format!("rule {rule}: Input is not JSON: {e}")))
            })
            .transpose()
    }

    fn target(&self, t: &Value) -> TargetSpec {
        let arn = t.get("Arn").and_then(|a| self.eval(a)).unwrap_or_default();
        let function = arn.rsplit_once(":function:").map(|(_, n)| n.to_owned());
        match function {
            Some(function) => TargetSpec::Function {
                function,
                input: t
                    .get("Input")
                    .and_then(|v| self.eval(v))
                    .and_then(|text| serde_json::from_str(&text).ok()),
                input_path: t.get("InputPath").and_then(|v| self.eval(v)),
            },
            None => TargetSpec::Other { arn },
        }
    }
}

/// The bus name in a name or an ARN (`arn:aws:events:…:event-bus/NAME`);
/// empty means `default`.
pub fn bus_name(named: &str) -> &str {
    let name = named.rsplit_once("event-bus/").map_or(named, |(_, n)| n);
    if name.is_empty() { DEFAULT_BUS } else { name }
}

#[cfg(test)]
mod tests;
