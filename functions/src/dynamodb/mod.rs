//! The DynamoDB `Store`: one table, access patterns of DESIGN.md §3.
//!
//! Never a Scan. Broadcast is one paginated Query on the room partition;
//! cleanup is one Query on the connection partition plus batched deletes.
//! Throttling and transient faults are retried by the SDK's standard retry;
//! every call carries the client's operation timeout (see [`client`]).

use std::time::Duration;

use async_trait::async_trait;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};

use crate::auth::Identity;
use crate::clock::Millis;
use crate::config::RateLimit;
use crate::protocol::Message;
use crate::store::{
    ChangeApplied, Committed, ConnectionRecord, JoinOutcome, MemberPage, Membership, Page, Removed,
    Reserved, SeqState, Slot, Store, StoreError, Touched,
};

mod changes;
mod counting;
mod items;
mod member_cache;
mod member_count;
mod membership;
mod revocation;
mod sequence;
mod table;
mod touch;

pub use counting::CallCounter;
pub use table::{IndexDefinition, TableDefinition, TableError, create_table};

use items::*;

/// Tunables of the adapter.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Attempts at a conditional read-modify-write before `Conflict`.
    /// Default 16.
    pub cas_attempts: u32,
    /// Attempts at a batch whose items keep coming back unprocessed.
    /// Default 8, with exponential backoff from 20 ms.
    pub batch_attempts: u32,
    /// `Limit` on each page of a room's member Query. Default `None`:
    /// DynamoDB's 1 MB pages. Tests set it to prove pagination is followed.
    pub member_page_limit: Option<i32>,
    /// How long a warm function reuses a room's first member page while the
    /// room's member set is unchanged (one read of its version instead of
    /// a Query per message; see `member_cache`). Default 2 s; zero
    /// disables it.
    pub member_cache: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cas_attempts: 16,
            batch_attempts: 8,
            member_page_limit: None,
            member_cache: Duration::from_secs(2),
        }
    }
}

/// A DynamoDB client configuration with timeouts on every call, so a dead
/// server gives errors, not hangs. `endpoint` points at moto or DynamoDB
/// Local. Tests add interceptors to it before building.
pub fn config_builder(
    sdk: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build();
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk).timeout_config(timeouts);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder
}

/// A client built from [`config_builder`].
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    Client::from_conf(config_builder(sdk, endpoint).build())
}

/// The adapter. Build once at init and share it behind an `Arc`.
pub struct DynamoStore {
    client: Client,
    table: String,
    options: StoreOptions,
    member_cache: member_cache::MemberCache,
}

fn unavailable<E, R>(operation: &'static str) -> impl Fn(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| StoreError::Unavailable {
        operation,
        reason: crate::error_chain::one_line(&e),
    }
}

/// Whether a conditional write happened: `Ok(false)` when its condition
/// failed (DynamoDB's `ConditionalCheckFailedException`), `Unavailable`
/// for any other failure. `failed` tells the operation's error type.
fn written<O, E>(
    result: Result<O, SdkError<E, aws_smithy_runtime_api::http::Response>>,
    failed: impl Fn(&E) -> bool,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(&failed) => Ok(false),
        Err(e) => Err(unavailable(operation)(e)),
    }
}

/// Exponential backoff, from 20 ms, for batches that come back with
/// unprocessed items (throttling), up to a number of attempts.
struct Backoff {
    delay: Duration,
    attempts_left: u32,
}

impl Backoff {
    fn new(attempts: u32) -> Self {
        Self {
            delay: Duration::from_millis(20),
            attempts_left: attempts.max(1),
        }
    }

    /// After an attempt that left `unprocessed` items: waits before the next
    /// one, or gives up with `Unavailable` when the attempts are used up.
    async fn wait(
        &mut self,
        operation: &'static str,
        unprocessed: usize,
    ) -> Result<(), StoreError> {
        self.attempts_left -= 1;
        if self.attempts_left == 0 {
            return Err(StoreError::Unavailable {
                operation,
                reason: format!("{unprocessed} items still unprocessed after the last attempt"),
            });
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
        Ok(())
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable {
        operation: "build request",
        reason: e.to_string(),
    }
}

impl DynamoStore {
    /// An adapter over `table`.
    pub fn new(client: Client, table: impl Into<String>, options: StoreOptions) -> Self {
        Self {
            client,
            table: table.into(),
            options,
            member_cache: member_cache::MemberCache::default(),
        }
    }

    /// Queries one partition (optionally a sort-key prefix), all pages.
    async fn query_all(
        &self,
        pk: String,
        prefix: Option<&str>,
        page_limit: Option<i32>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (page, next) = self
                .query_page(&pk, prefix, page_limit, start.take())
                .await?;
            items.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }

    /// One page of a partition Query from `start`; returns its items and
    /// where the next page starts (`None` on the last).
    async fn query_page(
        &self,
        pk: &str,
        prefix: Option<&str>,
        limit: Option<i32>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            // Consistent: a member who joined before a message was
            // committed must be in that message's fan-out (or find it in
            // history); a stale replica could miss them.
            .consistent_read(true)
            .expression_attribute_values(":pk", s(pk))
            .set_limit(limit)
            .set_exclusive_start_key(start);
        q = match prefix {
            Some(p) => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(p)),
            None => q.key_condition_expression("pk = :pk"),
        };
        let out = q.send().await.map_err(unavailable("query"))?;
        let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((out.items().to_vec(), next))
    }

    /// Writes requests in batches of 25, retrying unprocessed items.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut backoff = Backoff::new(self.options.batch_attempts);
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable("batch write"))?;
                match out.unprocessed_items().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.is_empty() => pending = rest.clone(),
                    _ => break,
                }
                backoff.wait("batch write", pending.len()).await?;
            }
        }
        Ok(())
    }

    async fn get(&self, key_item: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(unavailable("get"))?;
        Ok(out.item().cloned())
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable("put"))?;
        Ok(())
    }

    /// Live connection ids of a user, from the user→connection index.
    async fn user_connection_ids(
        &self,
        user: &str,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for item in self.query_all(user_pk(user), None, None).await? {
            let r = Reader::new(&item);
            if live(r.expires()?, now) {
                let sk = r.string(SK)?;
                ids.push(sk.strip_prefix("CONN#").unwrap_or(&sk).to_owned());
            }
        }
        Ok(ids)
    }

    async fn history_page(
        &self,
        room: &str,
        condition: &str,
        bound: String,
        forward: bool,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError> {
        // Expired items and tombstones are skipped; keep reading until
        // limit + 1 live messages (the extra one answers `more`) or the
        // partition ends.
        let want = limit as usize + 1;
        let mut page = Page::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(hist_pk(room)))
                .expression_attribute_values(":bound", s(bound.clone()))
                .scan_index_forward(forward)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable("history query"))?;
            for item in out.items() {
                if !live(Reader::new(item).expires()?, now) {
                    continue;
                }
                let slot = sequence::slot_from(item)?;
                page.first_slot.get_or_insert(slot.seq());
                if let Slot::Message(m) = slot {
                    if page.messages.len() + 1 == want {
                        page.more = true;
                        return Ok(page);
                    }
                    page.messages.push(m);
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(page),
            }
        }
    }
}

/// An update conditioned on `attribute_exists(pk)` of a connection item:
/// a failed condition means the connection is gone.
fn connection_must_exist(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_smithy_runtime_api::http::Response,
        >,
    >,
    id: &str,
    operation: &'static str,
) -> Result<(), StoreError> {
    let found = written(
        result,
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
        operation,
    )?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: "connection",
            key: id.to_owned(),
        })
    }
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(build_error)?,
        )
        .build())
}

fn delete_request(pk: String, sk: String) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key(pk, sk)))
                .build()
                .map_err(build_error)?,
        )
        .build())
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_connection(&self, c: &ConnectionRecord) -> Result<(), StoreError> {
        let mut index = key(user_pk(&c.user), conn_sk(&c.connection_id));
        index.insert(EXPIRES.into(), n(ttl_secs(c.expires_at)));
        self.batch_write(vec![put_request(connection_item(c))?, put_request(index)?])
            .await
    }

    async fn get_connection(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let Some(item) = self.get(key(conn_pk(id), META), true).await? else {
            return Ok(None);
        };
        let c = connection_from(&item)?;
        Ok((c.expires_at > now).then_some(c))
    }

    async fn touch(&self, id: &str, now: Millis, limit: &RateLimit) -> Result<Touched, StoreError> {
        self.touch_connection(id, now, limit).await
    }

    async fn update_identity(&self, id: &str, identity: &Identity) -> Result<(), StoreError> {
        let rooms = serde_json::to_string(&identity.rooms).unwrap_or_else(|_| "{}".into());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), META)))
            .update_expression(
                "SET #name = :name, rooms = :rooms, direct = :direct, tokenExp = :exp",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&identity.name))
            .expression_attribute_values(":rooms", s(rooms))
            .expression_attribute_values(":direct", AttributeValue::Bool(identity.direct))
            .expression_attribute_values(":exp", n(identity.exp))
            .send()
            .await;
        connection_must_exist(result, id, "update identity")
    }

    async fn remove_connection(&self, id: &str) -> Result<Option<Removed>, StoreError> {
        self.remove_connection_items(id).await
    }

    async fn user_connections(&self, user: &str, now: Millis) -> Result<Vec<String>, StoreError> {
        self.user_connection_ids(user, now).await
    }

    async fn join(&self, m: &Membership) -> Result<JoinOutcome, StoreError> {
        self.join_room(m).await
    }

    async fn leave(&self, room: &str, id: &str) -> Result<Option<Membership>, StoreError> {
        self.leave_room(room, id).await
    }

    async fn members(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        self.room_items(room, MEMBER_PREFIX, now).await
    }

    async fn members_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
        now: Millis,
    ) -> Result<MemberPage, StoreError> {
        match after {
            None => self.first_member_page(room, limit, now).await,
            Some(_) => self.member_page(room, after, limit, now).await,
        }
    }

    async fn member_count(&self, room: &str, _now: Millis) -> Result<u64, StoreError> {
        self.read_member_count(room).await
    }

    async fn watchers(&self, room: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        self.room_items(room, WATCH_PREFIX, now).await
    }

    async fn membership(
        &self,
        room: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Membership>, StoreError> {
        self.membership_of(room, id, now).await
    }

    async fn user_memberships(
        &self,
        room: &str,
        user: &str,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError> {
        self.memberships_of_user(room, user, now).await
    }

    async fn memberships_of(&self, id: &str, now: Millis) -> Result<Vec<Membership>, StoreError> {
        let mut found = Vec::new();
        for item in self.query_all(conn_pk(id), Some(ROOM_PREFIX), None).await? {
            let m = membership_from(&item)?;
            if m.expires_at > now {
                found.push(m);
            }
        }
        Ok(found)
    }

    async fn refresh_memberships(
        &self,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        self.refresh_room_items(id, now, expires_at).await
    }

    async fn reserve_seq(&self, room: &str, now: Millis) -> Result<Reserved, StoreError> {
        self.reserve(room, now).await
    }

    async fn sent_seq(
        &self,
        room: &str,
        user: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<u64>, StoreError> {
        let marker = self
            .marker(&key(idem_pk(room), idem_sk(user, id)), now)
            .await?;
        Ok(marker.map(|(seq, _)| seq))
    }

    async fn commit(
        &self,
        message: &Message,
        expires_at: Millis,
        marker_expires_at: Millis,
        writer: &str,
    ) -> Result<Committed, StoreError> {
        self.commit_message(message, expires_at, marker_expires_at, writer)
            .await
    }

    async fn close_slot(
        &self,
        room: &str,
        seq: u64,
        taken_at: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        self.close(room, seq, taken_at, expires_at).await
    }

    async fn seq_state(&self, room: &str) -> Result<SeqState, StoreError> {
        self.counter(room).await
    }

    async fn slots(
        &self,
        room: &str,
        after: u64,
        upto: u64,
        now: Millis,
    ) -> Result<Vec<Slot>, StoreError> {
        self.read_slots(room, after, upto, now).await
    }

    async fn advance_settled(&self, room: &str, seq: u64) -> Result<(), StoreError> {
        self.raise_settled(room, seq).await
    }

    async fn find_message(
        &self,
        room: &str,
        author: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Message>, StoreError> {
        self.find(room, author, id, now).await
    }

    async fn apply_change(
        &self,
        room: &str,
        target: u64,
        change: &Message,
    ) -> Result<ChangeApplied, StoreError> {
        self.apply(room, target, change).await
    }

    async fn history_before(
        &self,
        room: &str,
        before: Option<u64>,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError> {
        match before {
            Some(b) => {
                self.history_page(
                    room,
                    "pk = :pk AND sk < :bound",
                    msg_sk(b),
                    false,
                    limit,
                    now,
                )
                .await
            }
            None => {
                self.history_page(
                    room,
                    "pk = :pk AND begins_with(sk, :bound)",
                    MSG_PREFIX.into(),
                    false,
                    limit,
                    now,
                )
                .await
            }
        }
    }

    async fn history_after(
        &self,
        room: &str,
        after: u64,
        limit: u32,
        now: Millis,
    ) -> Result<Page, StoreError> {
        // `MSG#` + 20 digits sorts below any other prefix that starts with a
        // later character, so `sk > MSG#{after}` stays within messages.
        self.history_page(
            room,
            "pk = :pk AND sk > :bound",
            msg_sk(after),
            true,
            limit,
            now,
        )
        .await
    }

    async fn revoke(&self, user: &str, until: Millis) -> Result<(), StoreError> {
        self.put_revocation(user, until).await
    }

    async fn revoked_until(&self, user: &str, now: Millis) -> Result<Option<Millis>, StoreError> {
        self.get_revocation(user, now).await
    }

    async fn mark_direct(
        &self,
        user: &str,
        id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let mut item = key(dm_pk(user), id);
        item.insert(EXPIRES.into(), n(ttl_secs(expires_at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now.div_euclid(1000)))
            .send()
            .await;
        written(
            result,
            aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
            "mark direct",
        )
    }
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").finish_non_exhaustive()
    }
}
