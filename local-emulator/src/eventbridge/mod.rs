//! EventBridge, offline: `PutEvents` and `TestEventPattern` on the
//! emulator's port (`api`), the template's rules matched against every
//! event (`pattern`) and their function targets invoked asynchronously as
//! EventBridge invokes Lambda (so Lambda's own async retries apply), and a
//! live feed of every event for `roomcast events` (`tail`).

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use roomcast_core::clock::Clock;

use crate::iam::Iam;
use crate::metrics::Metrics;
use crate::template::{Template, TemplateError, invalid};
use crate::timefmt::iso8601_seconds;
use rules::{RuleSpec, TargetSpec};

pub(crate) mod api;
pub mod pattern;
pub(crate) mod put_events;
pub mod rules;
pub(crate) mod tail;

/// How EventBridge reaches a rule's function target: asynchronously, as
/// EventBridge invokes Lambda, through a handle the emulator hands in at
/// start-up (as LocalStack's EventBridge calls Lambda through its API,
/// never its internals).
pub(crate) trait LambdaTarget: Send + Sync {
    /// Queues an `Event` invocation of `function`; false when there is no
    /// such function.
    fn invoke_async(&self, function: &str, event: Value) -> bool;
}

/// What EventBridge counts, checks and stamps with.
pub(crate) struct Handles {
    pub(crate) region: String,
    pub(crate) metrics: Arc<Metrics>,
    /// Checks callers' roles (`None` with `--no-iam`).
    pub(crate) iam: Option<Arc<Iam>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lambda: Arc<dyn LambdaTarget>,
}

/// How many events the live feed holds for a slow reader before it skips.
const FEED_CAPACITY: usize = 1024;

/// The emulated EventBridge of one emulator.
pub(crate) struct EventBridge {
    buses: Vec<String>,
    rules: Vec<RuleSpec>,
    feed: broadcast::Sender<Arc<str>>,
    pub(crate) handles: Handles,
}

impl EventBridge {
    /// The buses and rules of `template`. A rule whose function target is
    /// not in the template is an error naming both.
    pub(crate) fn from_template(
        template: &Template,
        handles: Handles,
    ) -> Result<Self, TemplateError> {
        let rules = template.event_rules()?;
        let functions = template.functions()?;
        for rule in &rules {
            for target in &rule.targets {
                match target {
                    TargetSpec::Function { function, .. } => {
                        let known = functions
                            .iter()
                            .any(|f| &f.logical_id == function || &f.function_name == function);
                        if !known {
                            return Err(invalid(format!(
                                "rule {} targets function {function}, which is not in the template",
                                rule.name
                            )));
                        }
                    }
                    TargetSpec::Other { arn } => {
                        tracing::warn!(rule = %rule.name, target = %arn, "rule target is not a function of the template; it is not run offline");
                    }
                }
            }
        }
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Self {
            buses: template.event_buses(),
            rules,
            feed,
            handles,
        })
    }

    /// Whether `name` is a bus of the template.
    pub(crate) fn has_bus(&self, name: &str) -> bool {
        self.buses.iter().any(|b| b == name)
    }

    /// The rules, for start-up's summary.
    pub(crate) fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    /// A new reader of the live feed.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.feed.subscribe()
    }

    /// Routes one accepted event: to the feed, and to the function targets
    /// of every rule on `bus` that matches.
    pub(crate) fn route(&self, bus: &str, event: &Value) {
        // Nobody listening is fine: the send fails and nothing is kept.
        let _ = self.feed.send(Arc::from(event.to_string()));
        for rule in self.rules.iter().filter(|r| r.bus == bus) {
            if !rule.pattern.matches(event) {
                continue;
            }
            self.handles.metrics.event_matched(&rule.name);
            for target in &rule.targets {
                let TargetSpec::Function {
                    function,
                    input,
                    input_path,
                } = target
                else {
                    continue;
                };
                let payload = match (input, input_path) {
                    (Some(input), _) => input.clone(),
                    (None, Some(path)) => select(event, path),
                    (None, None) => event.clone(),
                };
                if self.handles.lambda.invoke_async(function, payload) {
                    tracing::info!(rule = %rule.name, %function, id = %event["id"], "rule matched; its target invoked");
                }
            }
        }
    }
}

/// The event as EventBridge delivers it to targets ("Amazon EventBridge
/// events": version, id, detail-type, source, account, time, region,
/// resources, detail).
pub(crate) fn envelope(
    id: &str,
    entry: &put_events::Entry,
    account: &str,
    region: &str,
    now_ms: i64,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": entry.detail_type,
        "source": entry.source,
        "account": account,
        "time": iso8601_seconds(entry.time_ms.unwrap_or(now_ms)),
        "region": region,
        "resources": entry.resources,
        "detail": entry.detail,
    })
}

/// `InputPath`: a simple JSONPath (`$`, `$.detail`, `$.detail.room`).
fn select(event: &Value, path: &str) -> Value {
    let rest = path.trim_start_matches('$').trim_start_matches('.');
    if rest.is_empty() {
        return event.clone();
    }
    rest.split('.')
        .try_fold(event, |v, key| v.get(key))
        .cloned()
        .unwrap_or(Value::Null)
}
