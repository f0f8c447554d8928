//! SDK settings for the emulator's own AWS clients.

use aws_config::{BehaviorVersion, Region};

/// SDK settings for local endpoints (the emulator's `@connections`, moto):
/// requests are signed but not verified, so static credentials and a
/// default region do; real ones from the environment win.
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "roomcast-emulator",
        ));
    }
    loader.load().await
}
