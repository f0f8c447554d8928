//! What IAM authorizes for one DynamoDB call (Amazon DynamoDB Developer
//! Guide, "DynamoDB API permissions: Actions, resources, and conditions
//! reference"): the action is the operation's name under `dynamodb:`, on
//! the table the request names, or on `table/T/index/I` for a query or
//! scan of an index. A batch names each of its tables; a transaction is
//! authorized item by item as the operation each item is (there is no IAM
//! action for `TransactWriteItems` itself: a `Put` needs `dynamodb:PutItem`,
//! a `ConditionCheck` `dynamodb:ConditionCheckItem`). PartiQL statements
//! need `dynamodb:PartiQLSelect`, `…Insert`, `…Update` or `…Delete` on the
//! table they name. Operations on no table (`ListTables`) are on `*`.

use serde_json::Value;

use crate::iam::Request;

/// The requests IAM checks for `operation` with this `body`.
pub(crate) fn requests(operation: &str, body: &[u8], region: &str) -> Vec<Request> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let table = |name: &str| {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!(
                "arn:aws:dynamodb:{region}:{}:table/{name}",
                crate::template::ACCOUNT
            )
        }
    };
    let action = |op: &str| format!("dynamodb:{op}");
    match operation {
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .map(|items| {
                items
                    .keys()
                    .map(|t| Request::new(action(operation), table(t)))
                    .collect()
            })
            .unwrap_or_default(),
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, inner) = item.as_object()?.iter().next()?;
                let op = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    _ => return None,
                };
                Some(Request::new(
                    action(op),
                    table(inner["TableName"].as_str()?),
                ))
            })
            .collect(),
        "ExecuteStatement" => partiql(&body["Statement"], &table).into_iter().collect(),
        "BatchExecuteStatement" | "ExecuteTransaction" => {
            let list = if operation == "ExecuteTransaction" {
                &body["TransactStatements"]
            } else {
                &body["Statements"]
            };
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| partiql(&s["Statement"], &table))
                .collect()
        }
        _ => {
            let resource = match (body["TableName"].as_str(), body["ResourceArn"].as_str()) {
                (Some(t), _) => match body["IndexName"].as_str() {
                    Some(index) if matches!(operation, "Query" | "Scan") => {
                        format!("{}/index/{index}", table(t))
                    }
                    _ => table(t),
                },
                (None, Some(arn)) => arn.to_owned(),
                (None, None) => "*".to_owned(),
            };
            vec![Request::new(action(operation), resource)]
        }
    }
}

/// A PartiQL statement's action and table: `SELECT … FROM "t"`,
/// `INSERT INTO "t"`, `UPDATE "t"`, `DELETE FROM "t"`.
fn partiql(statement: &Value, table: &dyn Fn(&str) -> String) -> Option<Request> {
    let text = statement.as_str()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let verb = words.first()?.to_ascii_uppercase();
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(keyword))
            .and_then(|i| words.get(i + 1))
    };
    let (action, name) = match verb.as_str() {
        "SELECT" => ("dynamodb:PartiQLSelect", after("FROM")?),
        "INSERT" => ("dynamodb:PartiQLInsert", after("INTO")?),
        "UPDATE" => ("dynamodb:PartiQLUpdate", words.get(1)?),
        "DELETE" => ("dynamodb:PartiQLDelete", after("FROM")?),
        _ => return None,
    };
    // `"table"."index"` names an index; quotes are optional.
    let name = name.trim_end_matches(';');
    let mut parts = name.split('.').map(|p| p.trim_matches('"'));
    let t = parts.next()?;
    let resource = match parts.next() {
        Some(index) => format!("{}/index/{index}", table(t)),
        None => table(t),
    };
    Some(Request::new(action, resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "arn:aws:dynamodb:us-east-1:000000000000:table";

    fn of(op: &str, body: &str) -> Vec<(String, String)> {
        requests(op, body.as_bytes(), "us-east-1")
            .into_iter()
            .map(|r| (r.action, r.resource))
            .collect()
    }

    fn pair(a: &str, r: &str) -> (String, String) {
        (a.to_owned(), r.to_owned())
    }

    #[test]
    fn single_item_calls_are_on_their_table() {
        assert_eq!(
            of("PutItem", r#"{"TableName": "chat", "Item": {}}"#),
            vec![pair("dynamodb:PutItem", &format!("{T}/chat"))]
        );
        assert_eq!(
            of("Query", r#"{"TableName": "chat", "IndexName": "byRoom"}"#),
            vec![pair("dynamodb:Query", &format!("{T}/chat/index/byRoom"))]
        );
        assert_eq!(
            of("ListTables", "{}"),
            vec![pair("dynamodb:ListTables", "*")]
        );
    }

    #[test]
    fn batches_name_every_table_and_transactions_every_item() {
        let batch = of(
            "BatchGetItem",
            r#"{"RequestItems": {"a": {"Keys": []}, "b": {"Keys": []}}}"#,
        );
        assert_eq!(
            batch,
            vec![
                pair("dynamodb:BatchGetItem", &format!("{T}/a")),
                pair("dynamodb:BatchGetItem", &format!("{T}/b"))
            ]
        );
        let transaction = of(
            "TransactWriteItems",
            r#"{"TransactItems": [{"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]}"#,
        );
        assert_eq!(
            transaction,
            vec![
                pair("dynamodb:PutItem", &format!("{T}/a")),
                pair("dynamodb:ConditionCheckItem", &format!("{T}/b"))
            ]
        );
    }

    #[test]
    fn partiql_statements_are_on_the_table_they_name() {
        assert_eq!(
            of(
                "ExecuteStatement",
                r#"{"Statement": "SELECT * FROM \"chat\".\"byRoom\" WHERE room = ?"}"#
            ),
            vec![pair(
                "dynamodb:PartiQLSelect",
                &format!("{T}/chat/index/byRoom")
            )]
        );
        assert_eq!(
            of(
                "ExecuteStatement",
                r#"{"Statement": "update chat SET x = 1"}"#
            ),
            vec![pair("dynamodb:PartiQLUpdate", &format!("{T}/chat"))]
        );
    }
}
