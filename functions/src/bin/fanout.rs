//! Fan-out for large rooms: one shard per asynchronous invocation, handed
//! on by the message and publish functions (and by other shards).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use roomcast_aws::handlers::{self, AppBuilder, LogFormat, deadline_from_epoch_ms, init_tracing};
use roomcast_aws::shard::Shard;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::Json);
    let app = AppBuilder::from_env().await.app().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Shard>| {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        handlers::fanout(&app, event.payload, deadline)
    }))
    .await
}
