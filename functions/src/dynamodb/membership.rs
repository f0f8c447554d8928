//! Room membership on DynamoDB: join, leave, cleanup, refresh, and the three
//! ways of reading a room (everyone, the presence watchers, one user's
//! devices). Only broadcasts and presence rosters read the whole room;
//! every per-join and per-departure check costs O(watchers + devices).

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};

use super::items::*;
use super::{Backoff, DynamoStore, build_error, delete_request, put_request, unavailable};
use crate::clock::Millis;
use crate::store::{JoinOutcome, MemberPage, Membership, Removed, StoreError};

/// BatchGetItem's limit on keys per call.
const BATCH_GET_MAX: usize = 100;

impl DynamoStore {
    pub(super) async fn remove_connection_items(
        &self,
        id: &str,
    ) -> Result<Option<Removed>, StoreError> {
        let items = self.query_all(conn_pk(id), None, None).await?;
        let mut connection = None;
        let mut memberships = Vec::new();
        let mut deletes = Vec::with_capacity(items.len() * 3);
        for item in &items {
            let sk = Reader::new(item).string(SK)?;
            if sk == META {
                let c = connection_from(item)?;
                deletes.push(delete_request(user_pk(&c.user), conn_sk(id))?);
                connection = Some(c);
            } else if sk.starts_with(ROOM_PREFIX) {
                let m = membership_from(item)?;
                deletes.push(delete_request(room_pk(&m.room), member_sk(id))?);
                if m.presence {
                    deletes.push(delete_request(room_pk(&m.room), watch_sk(id))?);
                }
                memberships.push(m);
            }
            deletes.push(delete_request(conn_pk(id), sk)?);
        }
        self.batch_write(deletes).await?;
        for m in &memberships {
            self.add_member_count(&m.room, -1).await?;
        }
        Ok(connection.map(|connection| Removed {
            connection,
            memberships,
        }))
    }

    pub(super) async fn join_room(&self, m: &Membership) -> Result<JoinOutcome, StoreError> {
        // The reverse item (and the watcher copy) first: if the member write
        // fails, cleanup still finds and deletes whatever was written.
        if m.presence {
            self.batch_write(vec![
                put_request(reverse_item(m))?,
                put_request(watch_item(m))?,
            ])
            .await?;
        } else {
            self.put(reverse_item(m)).await?;
        }
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(member_item(m)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable("join"))?;
        let Some(old) = out.attributes().filter(|old| !old.is_empty()) else {
            // ADD returns the count it made: racing joins each get their own.
            let count = self.add_member_count(&m.room, 1).await?;
            return Ok(JoinOutcome {
                is_new: true,
                count: Some(count),
            });
        };
        let r = Reader::new(old);
        // The member's item changed (expiry, rights, token expiry): cached
        // member pages must not outlive it.
        self.bump_members_version(&m.room).await?;
        // Rights can change between joins (a refreshed token): a member
        // who lost the presence right must stop being told.
        if !m.presence && r.boolean("presence").unwrap_or(false) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(room_pk(&m.room), watch_sk(&m.connection_id))))
                .send()
                .await
                .map_err(unavailable("join"))?;
        }
        Ok(JoinOutcome {
            is_new: !live(r.expires()?, m.joined_at),
            count: None,
        })
    }

    pub(super) async fn leave_room(
        &self,
        room: &str,
        id: &str,
    ) -> Result<Option<Membership>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), member_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable("leave"))?;
        // The watcher copy goes unconditionally: one batch either way, and a
        // copy left behind by an interrupted join cannot outlive the leave.
        self.batch_write(vec![
            delete_request(conn_pk(id), room_sk(room))?,
            delete_request(room_pk(room), watch_sk(id))?,
        ])
        .await?;
        match out.attributes() {
            Some(old) if !old.is_empty() => {
                self.add_member_count(room, -1).await?;
                Ok(Some(membership_from(old)?))
            }
            _ => Ok(None),
        }
    }

    /// Live memberships under `prefix` in the room partition, all pages.
    pub(super) async fn room_items(
        &self,
        room: &str,
        prefix: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError> {
        let mut members = Vec::new();
        for item in self
            .query_all(room_pk(room), Some(prefix), self.options.member_page_limit)
            .await?
        {
            let m = membership_from(&item)?;
            if m.expires_at > now {
                members.push(m);
            }
        }
        Ok(members)
    }

    /// One page of the room's member Query, after connection `after`.
    pub(super) async fn member_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
        now: Millis,
    ) -> Result<MemberPage, StoreError> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let start = after.map(|a| key(room_pk(room), member_sk(a)));
        let (items, next) = self
            .query_page(&room_pk(room), Some(MEMBER_PREFIX), Some(limit), start)
            .await?;
        let mut members = Vec::with_capacity(items.len());
        for item in &items {
            let m = membership_from(item)?;
            if m.expires_at > now {
                members.push(m);
            }
        }
        let next = match next {
            Some(k) => Some(
                Reader::new(&k)
                    .string(SK)?
                    .trim_start_matches(MEMBER_PREFIX)
                    .to_owned(),
            ),
            None => None,
        };
        Ok(MemberPage { members, next })
    }

    pub(super) async fn membership_of(
        &self,
        room: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Membership>, StoreError> {
        let Some(item) = self.get(key(conn_pk(id), room_sk(room)), true).await? else {
            return Ok(None);
        };
        let m = membership_from(&item)?;
        Ok((m.expires_at > now).then_some(m))
    }

    pub(super) async fn memberships_of_user(
        &self,
        room: &str,
        user: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError> {
        let ids = self.user_connection_ids(user, now).await?;
        let keys = ids
            .iter()
            .map(|id| key(conn_pk(id), room_sk(room)))
            .collect();
        let mut found = Vec::new();
        for item in self.batch_get(keys).await? {
            let m = membership_from(&item)?;
            if m.expires_at > now {
                found.push(m);
            }
        }
        Ok(found)
    }

    /// Reads `keys` consistently in batches of 100, retrying unprocessed
    /// keys. Absent items are simply not returned.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let mut backoff = Backoff::new(self.options.batch_attempts);
            loop {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable("batch get"))?;
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    found.extend(items.iter().cloned());
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => pending = rest.clone(),
                    _ => break,
                }
                backoff.wait("batch get", pending.keys().len()).await?;
            }
        }
        Ok(found)
    }

    pub(super) async fn refresh_room_items(
        &self,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let items = self.query_all(conn_pk(id), Some(ROOM_PREFIX), None).await?;
        let mut puts = Vec::with_capacity(items.len() * 3);
        for item in &items {
            let mut m = membership_from(item)?;
            m.expires_at = expires_at;
            puts.push(put_request(member_item(&m))?);
            puts.push(put_request(reverse_item(&m))?);
            if m.presence {
                puts.push(put_request(watch_item(&m))?);
            }
        }
        self.batch_write(puts).await?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), META)))
            .update_expression("SET refreshedAt = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        super::connection_must_exist(result, id, "refresh")
    }
}
