//! DynamoDB's settings: the embedded memory store, or a DynamoDB endpoint
//! (moto, DynamoDB Local, AWS) and its tables.

use clap::Args;

/// Where state is kept. Every field is a `roomcast dev` flag.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct DynamoDbOptions {
    /// Use DynamoDB at this endpoint instead of the in-memory store.
    #[arg(long = "dynamodb-endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// The name of Roomcast's table (DynamoDB mode): the one its functions
    /// get as `ROOMCAST_TABLE`, and what `!Ref` of it means. The
    /// template's other tables keep their own names (`TableName`, else
    /// `roomcast-local-{LogicalId}`).
    #[arg(long, default_value = "roomcast")]
    pub table: String,
    /// Create every table of the template that is missing (DynamoDB mode).
    #[arg(long)]
    pub create_table: bool,
}

impl Default for DynamoDbOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            table: "roomcast".into(),
            create_table: false,
        }
    }
}
