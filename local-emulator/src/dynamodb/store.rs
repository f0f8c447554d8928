//! The store in-process functions share: the embedded memory store, or
//! DynamoDB at `--dynamodb-endpoint`, checked reachable (and its tables
//! present, or created) before anything starts.

use std::sync::Arc;

use roomcast_aws::dynamodb::{self, DynamoStore, StoreOptions};
use roomcast_core::store::Store;
use roomcast_core::store::memory::MemoryStore;

use crate::dynamodb::options::DynamoDbOptions;
use crate::error::EmulatorError;
use crate::template::Template;

/// The memory store, or DynamoDB with the template's tables ready.
pub(crate) async fn open(
    options: &DynamoDbOptions,
    template: &Template,
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn Store>, EmulatorError> {
    let Some(endpoint) = &options.endpoint else {
        return Ok(Arc::new(MemoryStore::new()));
    };
    let client = dynamodb::client(sdk, Some(endpoint));
    crate::dynamodb::reach::reachable(&client, endpoint).await?;
    if options.create_table {
        create_tables(&client, template).await?;
    } else {
        let names: Vec<String> = template.tables()?.into_iter().map(|t| t.name).collect();
        crate::dynamodb::reach::tables_exist(&client, endpoint, &names).await?;
    }
    Ok(Arc::new(DynamoStore::new(
        client,
        options.table.clone(),
        StoreOptions::default(),
    )))
}

/// Creates every table of the template under the name its functions are
/// given (Roomcast's under `--table`), with its keys, indexes, TTL and
/// stream; a table that exists already is left as it is.
async fn create_tables(
    client: &dynamodb::Client,
    template: &Template,
) -> Result<(), EmulatorError> {
    for table in template.tables()? {
        let created = dynamodb::create_table(client, &table.name, &table.definition)
            .await
            .map_err(|e| EmulatorError::Table {
                table: table.name.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(table = %table.name, logical_id = %table.logical_id, created, "DynamoDB table ready");
    }
    Ok(())
}
