//! The room's sequencer on DynamoDB (see `roomcast_core::store::sequencer`
//! for the protocol): the counter item moves by an unconditional `ADD`, so
//! concurrent sends never conflict on it; a message goes into its seq's
//! slot with its idempotency marker in one transaction that needs the slot
//! empty; a tombstone is a put that needs the slot empty too, so of a late
//! writer and a tombstone exactly one wins.
//!
//! The counter item holds `seq` (the top seq taken), `takenAt` (when, by
//! the taker's clock), `settled` (the watermark readers raise) and `epoch`
//! (the stream's, set once by the write that creates the counter).

use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};

use super::items::*;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::{DynamoStore, build_error, unavailable, written};
use crate::clock::Millis;
use crate::protocol::Message;
use crate::store::{Committed, Reserved, SeqState, Slot, StoreError};

/// Marks a tombstone in a history slot.
const CLOSED: &str = "closed";
/// When a tombstone's seq had been taken at the latest.
const TAKEN_AT: &str = "takenAt";
/// The counter's stream epoch.
const EPOCH: &str = "epoch";

impl DynamoStore {
    pub(super) async fn reserve(&self, room: &str, now: Millis) -> Result<Reserved, StoreError> {
        // The epoch is set by the write that creates the counter (or the
        // first one on a counter from before epochs), in the same item
        // write: no extra request, no extra unit.
        let fresh = crate::store::new_epoch();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), SEQ)))
            .update_expression(
                "ADD seq :one SET takenAt = :now, epoch = if_not_exists(epoch, :epoch)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":epoch", s(&fresh))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable("reserve seq"))?;
        let Some(old) = out.attributes() else {
            return Ok(Reserved {
                seq: 1,
                settled: 0,
                epoch: fresh,
            });
        };
        let r = Reader::new(old);
        let epoch = match r.string_or_empty(EPOCH)? {
            held if held.is_empty() => fresh,
            held => held,
        };
        let before = r.number_or("seq", 0)?;
        let mut settled = r.number_or("settled", 0)?;
        // A counter from before this sequencer (no `takenAt`) only ever
        // moved together with its message: everything up to it is stored,
        // so it starts out settled.
        if before > 0 && !old.contains_key(TAKEN_AT) && !old.contains_key("settled") {
            self.raise_settled(room, before).await?;
            settled = before;
        }
        Ok(Reserved {
            seq: before + 1,
            settled,
            epoch,
        })
    }

    pub(super) async fn commit_message(
        &self,
        message: &Message,
        expires_at: Millis,
        marker_expires_at: Millis,
        writer: &str,
    ) -> Result<Committed, StoreError> {
        let item = message_item(message, expires_at);
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge {
                key: format!("{}/{}", hist_pk(&message.room), msg_sk(message.seq)),
                size,
                limit: MAX_ITEM_BYTES,
            });
        }
        let marker_key = key(
            idem_pk(&message.room),
            idem_sk(&message.from.user, &message.id),
        );
        let now = message.ts;
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.put_marker(
                &marker_key,
                message.seq,
                writer,
                marker_expires_at,
                now,
            )?)
            .transact_items(self.put_new(item)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Committed::Stored),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_transaction_canceled_exception()) =>
            {
                // The marker or the slot was taken: the marker says which
                // (and whether it was this very attempt, retried).
                match self.marker(&marker_key, now).await? {
                    Some((seq, by)) if by == writer && seq == message.seq => Ok(Committed::Stored),
                    Some((seq, _)) => Ok(Committed::Duplicate { seq }),
                    None => Ok(Committed::SlotClosed),
                }
            }
            Err(e) => Err(unavailable("commit message")(e)),
        }
    }

    /// The live marker's seq and writer, if any.
    pub(super) async fn marker(
        &self,
        marker_key: &Item,
        now: Millis,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let Some(item) = self.get(marker_key.clone(), true).await? else {
            return Ok(None);
        };
        let r = Reader::new(&item);
        if !live(r.expires()?, now) {
            return Ok(None);
        }
        // Markers written before writer tokens existed have none.
        let by = r.string("writer").unwrap_or_default();
        Ok(Some((r.number("seq")?, by)))
    }

    pub(super) async fn close(
        &self,
        room: &str,
        seq: u64,
        taken_at: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let mut item = key(hist_pk(room), msg_sk(seq));
        item.insert(
            CLOSED.into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
        item.insert("seq".into(), n(seq));
        item.insert(TAKEN_AT.into(), n(taken_at));
        item.insert(EXPIRES.into(), n(ttl_secs(expires_at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written(
            result,
            PutItemError::is_conditional_check_failed_exception,
            "close slot",
        )
    }

    pub(super) async fn counter(&self, room: &str) -> Result<SeqState, StoreError> {
        // Consistent: a joiner settles, then reads history; both must see
        // at least every write that happened before the join.
        let Some(item) = self.get(key(room_pk(room), SEQ), true).await? else {
            return Ok(SeqState::default());
        };
        let r = Reader::new(&item);
        let top = r.number_or("seq", 0)?;
        let legacy = !item.contains_key(TAKEN_AT);
        Ok(SeqState {
            top,
            settled: if legacy {
                top
            } else {
                r.number_or("settled", 0)?
            },
            taken_at: r.number_or(TAKEN_AT, 0)?,
            // Counters from before epochs have none until their next seq.
            epoch: r.string_or_empty(EPOCH)?,
        })
    }

    pub(super) async fn raise_settled(&self, room: &str, seq: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), SEQ)))
            .update_expression("SET settled = :seq")
            .condition_expression("attribute_not_exists(settled) OR settled < :seq")
            .expression_attribute_values(":seq", n(seq))
            .send()
            .await;
        // Not written: another settle got as far or further.
        written(
            result,
            UpdateItemError::is_conditional_check_failed_exception,
            "raise settled",
        )?;
        Ok(())
    }

    pub(super) async fn read_slots(
        &self,
        room: &str,
        after: u64,
        upto: u64,
        now: Millis,
    ) -> Result<Vec<Slot>, StoreError> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let mut slots = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .consistent_read(true)
                .expression_attribute_values(":pk", s(hist_pk(room)))
                .expression_attribute_values(":from", s(msg_sk(after + 1)))
                .expression_attribute_values(":to", s(msg_sk(upto)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable("slots query"))?;
            for item in out.items() {
                if live(Reader::new(item).expires()?, now) {
                    slots.push(slot_from(item)?);
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(slots),
            }
        }
    }

    /// The sender's idempotency marker, unless a live one exists.
    fn put_marker(
        &self,
        marker_key: &Item,
        seq: u64,
        writer: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut marker = marker_key.clone();
        marker.insert("seq".into(), n(seq));
        marker.insert("writer".into(), s(writer));
        marker.insert(EXPIRES.into(), n(ttl_secs(expires_at)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now.div_euclid(1000)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put that never overwrites: a filled slot is never replaced.
    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// A history item: a message, or a tombstone.
pub(super) fn slot_from(item: &Item) -> Result<Slot, StoreError> {
    if item.contains_key(CLOSED) {
        let r = Reader::new(item);
        return Ok(Slot::Closed {
            seq: r.number("seq")?,
            taken_at: r.number_or(TAKEN_AT, 0)?,
        });
    }
    message_from(item).map(Slot::Message)
}
