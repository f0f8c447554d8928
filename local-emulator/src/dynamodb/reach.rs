//! The DynamoDB endpoint, checked once at start-up: an emulator that
//! started against an endpoint nobody listens on, or without its tables,
//! would print its banner and then fail every connect.

use std::time::Duration;

use roomcast_aws::dynamodb::Client;
use roomcast_aws::error_chain::one_line;

use crate::error::EmulatorError;

/// How long the first answer may take: DynamoDB Local on a JVM answers
/// its first request in about a second; this only catches silence.
const FIRST_ANSWER: Duration = Duration::from_secs(10);

/// One `ListTables` call: the endpoint answers, or start-up fails naming it.
pub(crate) async fn reachable(client: &Client, endpoint: &str) -> Result<(), EmulatorError> {
    let unreachable = |reason: String| EmulatorError::DynamoDb {
        endpoint: endpoint.to_owned(),
        reason,
    };
    match tokio::time::timeout(FIRST_ANSWER, client.list_tables().limit(1).send()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(one_line(&e))),
        Err(_) => Err(unreachable(format!("no answer within {FIRST_ANSWER:?}"))),
    }
}

/// Each table exists (when `--create-table` is not asked for).
pub(crate) async fn tables_exist(
    client: &Client,
    endpoint: &str,
    tables: &[String],
) -> Result<(), EmulatorError> {
    for table in tables {
        match client.describe_table().table_name(table).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Err(EmulatorError::Table {
                    table: table.clone(),
                    reason: format!(
                        "it does not exist at {endpoint}: pass --create-table, or run `roomcast table create --endpoint {endpoint}`"
                    ),
                });
            }
            Err(e) => {
                return Err(EmulatorError::DynamoDb {
                    endpoint: endpoint.to_owned(),
                    reason: one_line(&e),
                });
            }
        }
    }
    Ok(())
}
