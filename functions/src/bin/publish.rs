//! Publish from the team's backends: invoked directly (Lambda Invoke, IAM)
//! with `{"room": ..., "data": ...}` or `{"user": ..., "data": ...}`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, PublishRequest, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let app = AppBuilder::from_env().await.app(false).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<PublishRequest>| {
        handlers::publish(&app, event.payload)
    }))
    .await
}
