//! Appending a message: the seq and the message become visible together.
//!
//! The room's seq counter only moves in the same transaction that stores the
//! message under it (and the sender's idempotency marker). So every seq a
//! reader can see (`joined.seq`, a history page) is stored, and concurrent
//! sends to one room are serialised by the counter's condition: the loser
//! re-reads and takes the next seq. Allocating the seq first (an `ADD`) and
//! writing the message after it let a joiner be promised a seq whose message
//! was not yet stored, and the clients skipped it as a hole.
//!
//! The price is optimistic concurrency on one item per room: a room
//! sustains roughly one send per transaction round trip (tens per second on
//! DynamoDB), which the per-connection rate limit keeps far from for any one
//! sender; docs/architecture.md has the numbers.

use std::time::Duration;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::items::*;
use super::{DynamoStore, build_error, unavailable};
use crate::clock::Millis;
use crate::protocol::Message;
use crate::store::{Appended, NewMessage, StoreError};

impl DynamoStore {
    pub(super) async fn append_message(
        &self,
        msg: NewMessage,
        marker_expires_at: Millis,
    ) -> Result<Appended, StoreError> {
        let marker_key = key(idem_pk(&msg.room), idem_sk(&msg.from.user, &msg.id));
        let seq_key = key(room_pk(&msg.room), SEQ);
        let mut stored = Message {
            room: msg.room.clone(),
            seq: u64::MAX,
            id: msg.id.clone(),
            from: msg.from.clone(),
            data: msg.data.clone(),
            ts: msg.ts,
        };
        // Refuse what cannot be stored before any write.
        let size = item_size(&message_item(&stored, msg.expires_at));
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge {
                key: format!("{}/{}", hist_pk(&msg.room), MSG_PREFIX),
                size,
                limit: MAX_ITEM_BYTES,
            });
        }
        // Marks this call's own writes: an attempt whose answer was lost
        // (the SDK retried it, or it timed out after committing) is found
        // stored under this token and reported as new, so it is fanned out.
        let writer = uuid::Uuid::new_v4().simple().to_string();
        for attempt in 0..self.options.cas_attempts {
            // One consistent read answers both: a retry of a stored message
            // (its marker is live) and the room's current seq.
            let (original, current) = self.marker_and_seq(&marker_key, &seq_key, msg.ts).await?;
            match original {
                Some((seq, by)) if by == writer => {
                    stored.seq = seq;
                    return Ok(Appended::New(stored));
                }
                Some((seq, _)) => return Ok(Appended::Duplicate { seq }),
                None => {}
            }
            stored.seq = current + 1;
            let result = self
                .client
                .transact_write_items()
                .transact_items(self.advance_seq(&seq_key, current)?)
                .transact_items(self.put_marker(
                    &marker_key,
                    stored.seq,
                    &writer,
                    marker_expires_at,
                    msg.ts,
                )?)
                .transact_items(self.put_new(message_item(&stored, msg.expires_at))?)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Appended::New(stored)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_transaction_canceled_exception()) =>
                {
                    // Another send took this seq, or a concurrent retry of
                    // this one stored it: the next read tells which.
                    tracing::debug!(room = %msg.room, attempt, seq = stored.seq, "append lost a race; retrying");
                    tokio::time::sleep(contention_backoff(attempt)).await;
                }
                Err(e) => return Err(unavailable("append")(e)),
            }
        }
        Err(StoreError::Conflict {
            key: format!("{}/{SEQ}", room_pk(&msg.room)),
        })
    }

    /// The original seq and its writer if the marker is live, and the
    /// room's current seq.
    async fn marker_and_seq(
        &self,
        marker_key: &Item,
        seq_key: &Item,
        now: Millis,
    ) -> Result<(Option<(u64, String)>, u64), StoreError> {
        let mut original = None;
        let mut current = 0;
        for item in self
            .batch_get(vec![marker_key.clone(), seq_key.clone()])
            .await?
        {
            let r = Reader::new(&item);
            if item.get(PK) == seq_key.get(PK) {
                current = r.number_or("seq", 0)?;
            } else if live(r.expires()?, now) {
                // Markers written before writer tokens existed have none.
                let by = r.string("writer").unwrap_or_default();
                original = Some((r.number("seq")?, by));
            }
        }
        Ok((original, current))
    }

    /// Moves the room's counter from `current` to `current + 1`, only if
    /// nobody moved it since it was read.
    fn advance_seq(&self, seq_key: &Item, current: u64) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(seq_key.clone()))
            .update_expression("SET seq = :next")
            .condition_expression("attribute_not_exists(seq) OR seq = :current")
            .expression_attribute_values(":next", n(current + 1))
            .expression_attribute_values(":current", n(current))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
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

    /// A put that never overwrites: a stored message is never replaced.
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

/// Jittered exponential backoff for sends racing on one room's counter:
/// 2 ms doubling to 64 ms, times a random factor in [0.5, 1.5), so racing
/// writers spread out instead of colliding again in lockstep.
fn contention_backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(5);
    let jitter = uuid::Uuid::new_v4().as_u128() % 1000;
    Duration::from_micros(base * (500 + jitter as u64))
}
