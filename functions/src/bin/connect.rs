//! `$connect`: registers the connection under the authorizer's identity.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let app = AppBuilder::from_env().await.app().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            handlers::connect(&app, event.payload)
        },
    ))
    .await
}
