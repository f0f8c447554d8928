//! The template's `AWS::DynamoDB::Table` resources: their names, and what
//! `--create-table` creates for each.
//!
//! Every table keeps the name the template gives it (`TableName`, with
//! parameters and `!Sub` resolved), so a function that reads `!Ref` of it
//! from its environment finds it. A table without `TableName` gets what
//! CloudFormation would generate (`{stack}-{logical id}-{suffix}`), minus
//! the random suffix, so that the same table is found on the next run.
//! Roomcast's own table (the one Roomcast's functions are given as
//! `ROOMCAST_TABLE`) is named by `--table` instead.

use roomcast_aws::dynamodb::{IndexDefinition, TableDefinition};
use serde_yaml_ng::Value;

use super::{Template, TemplateError, invalid};

/// The stack name offline (`AWS::StackName`).
pub(crate) const STACK_NAME: &str = "roomcast-local";

/// One table of the template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// The logical id.
    pub logical_id: String,
    /// The table's name, as `!Ref` of it evaluates.
    pub name: String,
    /// Keys, indexes, TTL and stream.
    pub definition: TableDefinition,
}

impl Template {
    /// Every `AWS::DynamoDB::Table` of the template.
    pub fn tables(&self) -> Result<Vec<TableSpec>, TemplateError> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, table)| {
                Ok(TableSpec {
                    logical_id: id.to_owned(),
                    name: self.table_name_of(id, table),
                    definition: self.definition_of(id, table)?,
                })
            })
            .collect()
    }

    /// Roomcast's table: the one its functions get as `ROOMCAST_TABLE`,
    /// if the template has Roomcast's functions.
    pub fn roomcast_table(&self) -> Result<Option<TableSpec>, TemplateError> {
        let Some(id) = self.roomcast_table_id() else {
            return Ok(None);
        };
        Ok(self.tables()?.into_iter().find(|t| t.logical_id == id))
    }

    /// The name `!Ref` of table `id` evaluates to.
    pub(super) fn table_name_of(&self, id: &str, table: &Value) -> String {
        if self.roomcast_table_id().as_deref() == Some(id) {
            return self.table_name.clone();
        }
        self.prop(table, "TableName")
            .and_then(|v| self.eval(v))
            .unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
    }

    /// The logical id `ROOMCAST_TABLE` refers to, in Globals or in any
    /// function's environment.
    fn roomcast_table_id(&self) -> Option<String> {
        let variable = |env: Option<&Value>| {
            env?.get("Variables")?
                .get("ROOMCAST_TABLE")
                .and_then(ref_target)
        };
        let global = self
            .globals
            .get("Function")
            .and_then(|f| f.get("Environment"));
        variable(global).or_else(|| {
            self.of_type("AWS::Serverless::Function")
                .chain(self.of_type("AWS::Lambda::Function"))
                .find_map(|(_, f)| variable(self.prop(f, "Environment")))
        })
    }

    /// The table's keys, indexes, TTL and stream.
    pub(super) fn definition_of(
        &self,
        id: &str,
        table: &Value,
    ) -> Result<TableDefinition, TemplateError> {
        let ttl = self.prop(table, "TimeToLiveSpecification");
        let ttl_enabled = ttl
            .and_then(|t| t.get("Enabled"))
            .and_then(|v| self.eval(v))
            .as_deref()
            == Some("true");
        let stream = self.prop(table, "StreamSpecification");
        Ok(TableDefinition {
            attributes: self.pairs(
                id,
                table.get("Properties"),
                "AttributeDefinitions",
                ("AttributeName", "AttributeType"),
            )?,
            keys: self.pairs(
                id,
                table.get("Properties"),
                "KeySchema",
                ("AttributeName", "KeyType"),
            )?,
            ttl_attribute: if ttl_enabled {
                ttl.and_then(|t| t.get("AttributeName"))
                    .and_then(|v| self.eval(v))
            } else {
                None
            },
            global_indexes: self.indexes(id, table, "GlobalSecondaryIndexes")?,
            local_indexes: self.indexes(id, table, "LocalSecondaryIndexes")?,
            stream_view: stream
                .and_then(|s| s.get("StreamViewType"))
                .and_then(|v| self.eval(v)),
        })
    }

    fn indexes(
        &self,
        id: &str,
        table: &Value,
        prop: &str,
    ) -> Result<Vec<IndexDefinition>, TemplateError> {
        let Some(list) = self.prop(table, prop) else {
            return Ok(Vec::new());
        };
        let list = list
            .as_sequence()
            .ok_or_else(|| invalid(format!("table {id}: {prop} is not a list")))?;
        list.iter()
            .map(|index| {
                let name = index
                    .get("IndexName")
                    .and_then(|v| self.eval(v))
                    .ok_or_else(|| {
                        invalid(format!("table {id}: an index of {prop} has no IndexName"))
                    })?;
                let projection = index.get("Projection");
                Ok(IndexDefinition {
                    keys: self.pairs(
                        &format!("{id} index {name}"),
                        Some(index),
                        "KeySchema",
                        ("AttributeName", "KeyType"),
                    )?,
                    projection: projection
                        .and_then(|p| p.get("ProjectionType"))
                        .and_then(|v| self.eval(v))
                        .unwrap_or_else(|| "ALL".into()),
                    non_key_attributes: projection
                        .and_then(|p| p.get("NonKeyAttributes"))
                        .and_then(Value::as_sequence)
                        .map(|attrs| attrs.iter().filter_map(|a| self.eval(a)).collect())
                        .unwrap_or_default(),
                    name,
                })
            })
            .collect()
    }

    /// A list of two-field entries (`AttributeName` and `KeyType`, say).
    fn pairs(
        &self,
        id: &str,
        holder: Option<&Value>,
        prop: &str,
        (a, b): (&str, &str),
    ) -> Result<Vec<(String, String)>, TemplateError> {
        holder
            .and_then(|h| h.get(prop))
            .and_then(Value::as_sequence)
            .ok_or_else(|| invalid(format!("table {id} has no {prop}")))?
            .iter()
            .map(|e| {
                let x = e.get(a).and_then(|v| self.eval(v));
                let y = e.get(b).and_then(|v| self.eval(v));
                x.zip(y).ok_or_else(|| {
                    invalid(format!("table {id}: an entry of {prop} lacks {a} or {b}"))
                })
            })
            .collect()
    }
}

/// The logical id a `!Ref` (short or long form) names.
fn ref_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref")?.as_str().map(str::to_owned),
        _ => None,
    }
}
