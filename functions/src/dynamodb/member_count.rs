//! The room's member counter: `ROOM#{room}` / `COUNT`, kept by atomic `ADD`
//! on join (a membership that did not exist), leave and connection cleanup.
//! It lets a join in a room of 10,000 learn the room's size in one GetItem
//! instead of a Query over every member.
//!
//! It is approximate by one documented gap: a membership deleted by TTL
//! (its connection lost `$disconnect` and was never cleaned up) is never
//! subtracted. Reads clamp at zero.

use aws_sdk_dynamodb::types::ReturnValue;

use super::items::*;
use super::{DynamoStore, unavailable};
use crate::store::StoreError;

/// The counter's sort key.
pub(crate) const COUNT: &str = "COUNT";
const MEMBERS: &str = "members";
/// Bumped by every change to the member set or to a member's item (a
/// join, a re-join, a leave, a cleanup), after the change is written: a
/// fan-out that reads it after storing its message and finds the version
/// it cached the members under can reuse them (`member_cache`).
const VERSION: &str = "version";

impl DynamoStore {
    /// Adds `delta` to the room's member count and bumps the member set's
    /// version; returns the new count.
    pub(super) async fn add_member_count(&self, room: &str, delta: i64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), COUNT)))
            .update_expression("ADD #m :d, #v :one")
            .expression_attribute_names("#m", MEMBERS)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable("count members"))?;
        let count = match out.attributes() {
            Some(item) => Reader::new(item).number::<i64>(MEMBERS)?,
            None => 0,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The room's member count (0 for a room never joined).
    pub(super) async fn read_member_count(&self, room: &str) -> Result<u64, StoreError> {
        let Some(item) = self.get(key(room_pk(room), COUNT), false).await? else {
            return Ok(0);
        };
        let count = Reader::new(&item).number::<i64>(MEMBERS)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Bumps the member set's version alone (a member's item changed).
    pub(super) async fn bump_members_version(&self, room: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), COUNT)))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(unavailable("bump members version"))?;
        Ok(())
    }

    /// The member set's version, strongly consistent (0 for a room never
    /// joined).
    pub(super) async fn members_version(&self, room: &str) -> Result<u64, StoreError> {
        let Some(item) = self.get(key(room_pk(room), COUNT), true).await? else {
            return Ok(0);
        };
        Reader::new(&item).number_or(VERSION, 0)
    }
}
