//! Roomcast's own functions as a plug-in: the table of
//! `roomcast_aws::in_process` (the one place binaries meet handlers),
//! each built with the emulator's shared store and gateway.

use std::sync::Arc;

use roomcast_aws::handlers::AppBuilder;
use roomcast_aws::in_process::{self, BINARIES};
use serde_json::Value;

use crate::lambda::registry::{
    BuildError, BuildFuture, FunctionPlugin, Handler, InvokeError, InvokeFuture, Setup,
};

/// Roomcast's functions, to hand to the emulator.
pub fn functions() -> Arc<dyn FunctionPlugin> {
    Arc::new(Roomcast)
}

struct Roomcast;

impl FunctionPlugin for Roomcast {
    fn binaries(&self) -> Vec<String> {
        BINARIES.iter().map(|b| (*b).to_owned()).collect()
    }

    fn build(&self, binary: &str, setup: Setup) -> Option<BuildFuture> {
        if !BINARIES.contains(&binary) {
            return None;
        }
        let binary = binary.to_owned();
        Some(Box::pin(async move {
            let mut builder = AppBuilder::new(setup.env, setup.sdk).with_store(setup.store);
            if let Some(g) = setup.gateway {
                builder = builder.with_gateway(g);
            }
            let built = in_process::handler_for(&binary, &builder, setup.timeout)
                .await
                .map_err(|e| BuildError(e.to_string()))?
                .ok_or_else(|| BuildError(format!("no handler for {binary}")))?;
            let handler: Handler = Arc::new(move |event: Value| -> InvokeFuture {
                let call = built(event);
                Box::pin(async move {
                    call.await.map_err(|f| InvokeError {
                        error_type: f.error_type,
                        error_message: f.error_message,
                    })
                })
            });
            Ok(handler)
        }))
    }
}
