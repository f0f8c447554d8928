//! The REQUEST authorizer on `$connect`: verifies the JWT and the `Origin`.

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let builder = AppBuilder::from_env().await;
    let verifier = builder.verifier().await?;
    let origins = builder.origins();
    if origins.allows_all() {
        tracing::warn!(
            "every browser origin may connect (ROOMCAST_ALLOWED_ORIGINS is * or empty): list your origins in the AllowedOrigins parameter for production"
        );
    }
    let events = builder.events(builder.emf());
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
            handlers::authorizer(&*verifier, &origins, events.as_ref(), event.payload)
        },
    ))
    .await
}
