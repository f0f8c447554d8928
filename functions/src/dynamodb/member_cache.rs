//! A warm function's copy of a room's first member page, reused while the
//! room's member set has not changed. A hot room sends many messages
//! between two joins; without it, every message re-reads every member (a
//! Query of up to `FanoutInlineMax` items, about 37 strongly consistent
//! read units for 500 members), and with it a message costs one read of
//! the member counter's version.
//!
//! Why it is safe: every change to a room's members bumps the version after
//! the change is written (`member_count`), and a fan-out reads the version
//! after its message is stored. A joiner whose bump the fan-out did not see
//! bumped after the fan-out's read, so after the message was stored, and
//! its own settle, which follows its bump, finds the message (in `above`,
//! or at or below its starting seq). A page cached under an older version
//! is never used. Entries also expire after `StoreOptions::member_cache`,
//! so membership expiry (which bumps nothing) is seen within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::DynamoStore;
use crate::clock::Millis;
use crate::store::{MemberPage, StoreError};

/// Rooms kept at most; past it the cache starts over.
const MAX_ROOMS: usize = 1024;

#[derive(Default)]
pub(super) struct MemberCache(Mutex<HashMap<String, Entry>>);

struct Entry {
    version: u64,
    limit: usize,
    at: Instant,
    page: MemberPage,
}

impl DynamoStore {
    /// The first page of a room's members, from the cache when the room's
    /// member set has not changed since it was read.
    pub(super) async fn first_member_page(
        &self,
        room: &str,
        limit: usize,
        now: Millis,
    ) -> Result<MemberPage, StoreError> {
        let max_age = self.options.member_cache;
        if max_age.is_zero() {
            return self.member_page(room, None, limit, now).await;
        }
        let version = self.members_version(room).await?;
        {
            let entries = self
                .member_cache
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(room)
                && version != 0
                && e.version == version
                && e.limit == limit
                && e.at.elapsed() < max_age
            {
                return Ok(e.page.clone());
            }
        }
        let page = self.member_page(room, None, limit, now).await?;
        let mut entries = self
            .member_cache
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ROOMS {
            entries.clear();
        }
        entries.insert(
            room.to_owned(),
            Entry {
                version,
                limit,
                at: Instant::now(),
                page: page.clone(),
            },
        );
        Ok(page)
    }
}
