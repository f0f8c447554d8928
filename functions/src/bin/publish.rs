//! The server API for the team's backends, invoked directly (Lambda
//! Invoke, IAM): publish (`{"room": ..., "data": ...}` as before) and the
//! operations named by `op` (docs/server-api.md).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let app = AppBuilder::from_env().await.app().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handlers::server(&app, event.payload)
    }))
    .await
}
