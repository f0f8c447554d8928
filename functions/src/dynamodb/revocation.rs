//! Revoked users: one item per user (`REVOKE#{user}` / `META`, `until` in
//! ms), expiring with the revocation, read with one consistent GetItem.

use super::items::{EXPIRES, META, Reader, ttl_secs};
use super::{DynamoStore, key, n};
use crate::clock::Millis;
use crate::store::StoreError;

/// The partition of a user's revocation. Its own, so a user's connection
/// index (`USER#`) stays only connections.
fn revoke_pk(user: &str) -> String {
    format!("REVOKE#{user}")
}

impl DynamoStore {
    pub(super) async fn put_revocation(&self, user: &str, until: Millis) -> Result<(), StoreError> {
        let mut item = key(revoke_pk(user), META);
        item.insert("until".into(), n(until));
        item.insert(EXPIRES.into(), n(ttl_secs(until)));
        self.put(item).await
    }

    pub(super) async fn get_revocation(
        &self,
        user: &str,
        now: Millis,
    ) -> Result<Option<Millis>, StoreError> {
        let Some(item) = self.get(key(revoke_pk(user), META), true).await? else {
            return Ok(None);
        };
        let until: Millis = Reader::new(&item).number("until")?;
        Ok((until > now).then_some(until))
    }
}
