//! Creating the table from its definition (template.yaml's table resource
//! is the source of truth; the CLI and the tests read it from there).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_smithy_types::error::display::DisplayErrorContext;

/// What the table looks like: keys and the TTL attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDefinition {
    /// Attribute definitions: (name, type) with type `S`, `N` or `B`.
    pub attributes: Vec<(String, String)>,
    /// Key schema: (name, `HASH` or `RANGE`).
    pub keys: Vec<(String, String)>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

/// Why the table could not be created. Check the definition or the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The definition uses something DynamoDB does not know.
    #[error("invalid table definition: {0}")]
    Invalid(String),
    /// DynamoDB refused or could not be reached.
    #[error("DynamoDB: {0}")]
    Service(String),
}

/// Creates the table (on-demand) and enables TTL. Returns false if it
/// already existed, which is not an error.
pub async fn create_table(
    client: &Client,
    name: &str,
    def: &TableDefinition,
) -> Result<bool, TableError> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in &def.attributes {
        let kind = match kind.as_str() {
            "S" => ScalarAttributeType::S,
            "N" => ScalarAttributeType::N,
            "B" => ScalarAttributeType::B,
            other => {
                return Err(TableError::Invalid(format!(
                    "attribute {attr} has type {other}"
                )));
            }
        };
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(kind)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        );
    }
    for (attr, kind) in &def.keys {
        let kind = match kind.as_str() {
            "HASH" => KeyType::Hash,
            "RANGE" => KeyType::Range,
            other => return Err(TableError::Invalid(format!("key {attr} has type {other}"))),
        };
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(attr)
                .key_type(kind)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(TableError::Service(DisplayErrorContext(&e).to_string())),
    }
    if let Some(attr) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| TableError::Invalid(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| TableError::Service(DisplayErrorContext(&e).to_string()))?;
    }
    Ok(true)
}
