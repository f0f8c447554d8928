//! Changes on DynamoDB (`Store::find_message`, `Store::apply_change`; the
//! protocol is `roomcast_core::routes::change`'s). The changed message's
//! item holds its latest version: an edit's `UpdateItem` sets the data
//! only if its seq is later than the item's `revSeq`, and adds its seq to
//! the item's `versions` either way; a delete sets `deleted`, erases the
//! data and then each version's, and every edit's condition refuses a
//! deleted item, so an edit that lost the race erases its own data. No
//! read comes before these writes: each is one conditional `UpdateItem`
//! (1 WCU for a message under 1 KB), a delete one more per version.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::items::*;
use super::{DynamoStore, unavailable};
use crate::clock::Millis;
use crate::protocol::{ChangeKind, Message, Revision};
use crate::store::{ChangeApplied, StoreError};

/// What a conditional update of the changed message found.
enum Updated {
    /// Written; the item after the write.
    Done(Item),
    /// The condition failed; the item as it was (`None`: there is none).
    Refused(Option<Item>),
}

impl DynamoStore {
    pub(super) async fn find(
        &self,
        room: &str,
        author: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Message>, StoreError> {
        let Some((seq, _)) = self
            .marker(&key(idem_pk(room), idem_sk(author, id)), now)
            .await?
        else {
            return Ok(None);
        };
        let Some(item) = self.get(key(hist_pk(room), msg_sk(seq)), true).await? else {
            return Ok(None);
        };
        if item.contains_key("closed") || !live(Reader::new(&item).expires()?, now) {
            return Ok(None);
        }
        let message = message_from(&item)?;
        Ok(message.change.is_none().then_some(message))
    }

    pub(super) async fn apply(
        &self,
        room: &str,
        target: u64,
        change: &Message,
    ) -> Result<ChangeApplied, StoreError> {
        let Some(c) = &change.change else {
            return Ok(ChangeApplied::Missing);
        };
        let revision = Revision {
            seq: change.seq,
            by: change.from.clone(),
            ts: change.ts,
            deleted: c.kind == ChangeKind::Delete,
        };
        match c.kind {
            ChangeKind::Edit => self.edit(room, target, change, &revision).await,
            ChangeKind::Delete => self.delete(room, target, &revision).await,
        }
    }

    async fn edit(
        &self,
        room: &str,
        target: u64,
        change: &Message,
        revision: &Revision,
    ) -> Result<ChangeApplied, StoreError> {
        let version = AttributeValue::Ns(vec![change.seq.to_string()]);
        let latest = self
            .update(
                room,
                target,
                "SET #data = :data, rev = :rev, revSeq = :seq ADD versions :v",
                "attribute_exists(pk) AND attribute_not_exists(deleted) AND (attribute_not_exists(revSeq) OR revSeq < :seq)",
                vec![
                    (":data", s(change.data.to_string())),
                    (":rev", s(json_text(revision))),
                    (":seq", n(change.seq)),
                    (":v", version.clone()),
                ],
            )
            .await?;
        let old = match latest {
            Updated::Done(_) => return Ok(ChangeApplied::Applied),
            Updated::Refused(None) => return Ok(ChangeApplied::Missing),
            Updated::Refused(Some(old)) => old,
        };
        if !old.contains_key(DELETED) {
            // A later change is the latest version: this one is kept as a
            // version (so a delete erases it too), unless deleted meanwhile.
            let kept = self
                .update(
                    room,
                    target,
                    "ADD versions :v",
                    "attribute_exists(pk) AND attribute_not_exists(deleted)",
                    vec![(":v", version)],
                )
                .await?;
            if let Updated::Done(_) = kept {
                return Ok(ChangeApplied::Superseded);
            }
        }
        self.erase(room, change.seq).await?;
        Ok(ChangeApplied::Deleted)
    }

    async fn delete(
        &self,
        room: &str,
        target: u64,
        revision: &Revision,
    ) -> Result<ChangeApplied, StoreError> {
        let done = self
            .update(
                room,
                target,
                "SET #data = :null, rev = :rev, revSeq = :seq, deleted = :yes",
                "attribute_exists(pk) AND attribute_not_exists(deleted)",
                vec![
                    (":null", s("null")),
                    (":rev", s(json_text(revision))),
                    (":seq", n(revision.seq)),
                    (":yes", AttributeValue::Bool(true)),
                ],
            )
            .await?;
        let item = match done {
            Updated::Done(item) => item,
            Updated::Refused(None) => return Ok(ChangeApplied::Missing),
            Updated::Refused(Some(_)) => return Ok(ChangeApplied::Superseded),
        };
        let versions = match item.get(VERSIONS) {
            Some(AttributeValue::Ns(seqs)) => seqs.clone(),
            _ => Vec::new(),
        };
        for seq in versions {
            let seq = seq.parse().map_err(|_| StoreError::CorruptItem {
                key: format!("{}/{}", hist_pk(room), msg_sk(revision.seq)),
                reason: format!("versions holds {seq}, not a seq"),
            })?;
            self.erase(room, seq).await?;
        }
        Ok(ChangeApplied::Applied)
    }

    /// Erases the data of the change event at `seq`.
    async fn erase(&self, room: &str, seq: u64) -> Result<(), StoreError> {
        self.update(
            room,
            seq,
            "SET #data = :null",
            "attribute_exists(pk)",
            vec![(":null", s("null"))],
        )
        .await
        .map(|_| ())
    }

    /// One conditional `UpdateItem` of the message at `seq`.
    async fn update(
        &self,
        room: &str,
        seq: u64,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Updated, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(hist_pk(room), msg_sk(seq))))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if update.contains("#data") {
            request = request.expression_attribute_names("#data", "data");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(out) => Ok(Updated::Done(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(Updated::Refused(
                    c.item().filter(|i| !i.is_empty()).cloned(),
                )),
                _ => Err(unavailable("apply change")(e)),
            },
        }
    }
}
