//! `$default`: every client action. Replies go back as the route response.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let app = AppBuilder::from_env().await.app_verifying().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            handlers::message(&app, event.payload)
        },
    ))
    .await
}
