//! Creating the table from its definition (template.yaml's table resource
//! is the source of truth; the CLI and the tests read it from there).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};

/// What a table looks like, as `AWS::DynamoDB::Table` declares it: keys,
/// secondary indexes, TTL and stream. Capacity is not kept: tables are
/// created on demand, which changes no answer DynamoDB gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableDefinition {
    /// Attribute definitions: (name, type) with type `S`, `N` or `B`.
    pub attributes: Vec<(String, String)>,
    /// Key schema: (name, `HASH` or `RANGE`).
    pub keys: Vec<(String, String)>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
    /// `GlobalSecondaryIndexes`.
    pub global_indexes: Vec<IndexDefinition>,
    /// `LocalSecondaryIndexes`.
    pub local_indexes: Vec<IndexDefinition>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view: Option<String>,
}

/// One secondary index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexDefinition {
    /// `IndexName`.
    pub name: String,
    /// Key schema: (name, `HASH` or `RANGE`).
    pub keys: Vec<(String, String)>,
    /// `Projection.ProjectionType`: `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// `Projection.NonKeyAttributes`, for `INCLUDE`.
    pub non_key_attributes: Vec<String>,
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
    for key in key_schema(&def.keys)? {
        request = request.key_schema(key);
    }
    for index in &def.global_indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.keys)?))
                .projection(projection(index)?)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        );
    }
    for index in &def.local_indexes {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.keys)?))
                .projection(projection(index)?)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        );
    }
    if let Some(view) = &def.stream_view {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
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
        Err(e) => return Err(TableError::Service(crate::error_chain::one_line(&e))),
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
            .map_err(|e| TableError::Service(crate::error_chain::one_line(&e)))?;
    }
    Ok(true)
}

fn key_schema(keys: &[(String, String)]) -> Result<Vec<KeySchemaElement>, TableError> {
    keys.iter()
        .map(|(attr, kind)| {
            let kind = match kind.as_str() {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => return Err(TableError::Invalid(format!("key {attr} has type {other}"))),
            };
            KeySchemaElement::builder()
                .attribute_name(attr)
                .key_type(kind)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))
        })
        .collect()
}

fn projection(index: &IndexDefinition) -> Result<Projection, TableError> {
    let kind = match index.projection.as_str() {
        "" | "ALL" => ProjectionType::All,
        "KEYS_ONLY" => ProjectionType::KeysOnly,
        "INCLUDE" => ProjectionType::Include,
        other => {
            return Err(TableError::Invalid(format!(
                "index {} has projection {other}",
                index.name
            )));
        }
    };
    let mut p = Projection::builder().projection_type(kind);
    for attr in &index.non_key_attributes {
        p = p.non_key_attributes(attr);
    }
    Ok(p.build())
}
