//! Lambda as the rest of the emulator reaches it: the template's functions
//! by logical id, function name or ARN, and asynchronous invocation
//! (`async_queue`). Other services hold an `Arc<Lambda>` (the inspector's
//! replay) or a handle over it (EventBridge's targets); none sees how a
//! function runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::iam::Iam;
use crate::lambda::async_queue::AsyncQueue;
use crate::lambda::invoke::Function;
use crate::metrics::Metrics;

pub(crate) struct Lambda {
    /// Every function of the template, by logical id and by function name.
    functions: HashMap<String, Arc<Function>>,
    /// `AWS_REGION` of the functions and of their ARNs.
    region: String,
    /// `Event` invocations, with Lambda's retries.
    pub(crate) queue: AsyncQueue,
    pub(crate) metrics: Arc<Metrics>,
    /// Checks the Invoke API's callers (`None` with `--no-iam`).
    pub(crate) iam: Option<Arc<Iam>>,
}

impl Lambda {
    pub(crate) fn new(
        functions: HashMap<String, Arc<Function>>,
        region: String,
        async_retry_base: Duration,
        metrics: Arc<Metrics>,
        iam: Option<Arc<Iam>>,
    ) -> Self {
        Self {
            functions,
            region,
            queue: AsyncQueue {
                retry_base: async_retry_base,
                metrics: metrics.clone(),
            },
            metrics,
            iam,
        }
    }

    /// A function by logical id or function name.
    pub(crate) fn function(&self, name: &str) -> Option<Arc<Function>> {
        self.functions.get(name).cloned()
    }

    /// A function name's ARN.
    pub(crate) fn function_arn(&self, name: &str) -> String {
        crate::lambda::environment::function_arn(&self.region, name)
    }

    /// Queues an `Event` invocation of the function `name` (Lambda's
    /// asynchronous queue, with its retries); false when there is no such
    /// function.
    pub(crate) fn invoke_async(&self, name: &str, event: Value) -> bool {
        let Some(function) = self.function(name) else {
            return false;
        };
        self.queue.enqueue(function, event, Default::default());
        true
    }
}
