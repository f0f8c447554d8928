//! The store the emulator's in-process functions share, with `store-error`
//! faults: while one is active, calls answer `StoreError::Unavailable`
//! (the error a client sees as `unavailable`, and retries) instead of
//! acting, and the timeline records each. Functions run as processes reach
//! DynamoDB with their own clients, through `crate::dynamodb::proxy`.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::auth::Identity;
use roomcast_core::clock::Millis;
use roomcast_core::config::RateLimit;
use roomcast_core::protocol::Message;
use roomcast_core::store::{
    ChangeApplied, Committed, ConnectionRecord, JoinOutcome, MemberPage, Membership, Page, Removed,
    Reserved, SeqState, Slot, Store, StoreError, Touched,
};

use super::{FaultKind, Faults, Point, StoreFault, Subject};
use crate::timeline::Timeline;

/// A store that consults the faults before each call.
pub(crate) struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
    timeline: Arc<Timeline>,
}

impl FaultyStore {
    pub(crate) fn new(inner: Arc<dyn Store>, faults: Arc<Faults>, timeline: Arc<Timeline>) -> Self {
        Self {
            inner,
            faults,
            timeline,
        }
    }

    fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        let Some(FaultKind::StoreError { error }) =
            self.faults.take(Point::Store, Subject::default())
        else {
            return Ok(());
        };
        crate::dynamodb::proxy::record(&self.timeline, operation, error);
        Err(StoreError::Unavailable {
            operation,
            reason: match error {
                StoreFault::Throttling => {
                    "an injected store-error fault: ThrottlingException".into()
                }
                StoreFault::Unavailable => {
                    "an injected store-error fault: the store is unavailable".into()
                }
            },
        })
    }
}

/// Each method: check, then delegate.
macro_rules! faulty {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )*) => {
        #[async_trait]
        impl Store for FaultyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    self.check(stringify!($name))?;
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

faulty! {
    fn put_connection(&self, connection: &ConnectionRecord) -> ();
    fn get_connection(&self, connection_id: &str, now: Millis) -> Option<ConnectionRecord>;
    fn touch(&self, connection_id: &str, now: Millis, limit: &RateLimit) -> Touched;
    fn update_identity(&self, connection_id: &str, identity: &Identity) -> ();
    fn remove_connection(&self, connection_id: &str) -> Option<Removed>;
    fn user_connections(&self, user: &str, now: Millis) -> Vec<String>;
    fn join(&self, membership: &Membership) -> JoinOutcome;
    fn leave(&self, room: &str, connection_id: &str) -> Option<Membership>;
    fn members(&self, room: &str, now: Millis) -> Vec<Membership>;
    fn members_page(&self, room: &str, after: Option<&str>, limit: usize, now: Millis) -> MemberPage;
    fn member_count(&self, room: &str, now: Millis) -> u64;
    fn watchers(&self, room: &str, now: Millis) -> Vec<Membership>;
    fn membership(&self, room: &str, connection_id: &str, now: Millis) -> Option<Membership>;
    fn user_memberships(&self, room: &str, user: &str, now: Millis) -> Vec<Membership>;
    fn memberships_of(&self, connection_id: &str, now: Millis) -> Vec<Membership>;
    fn refresh_memberships(&self, connection_id: &str, now: Millis, expires_at: Millis) -> ();
    fn reserve_seq(&self, room: &str, now: Millis) -> Reserved;
    fn sent_seq(&self, room: &str, user: &str, id: &str, now: Millis) -> Option<u64>;
    fn commit(&self, message: &Message, expires_at: Millis, marker_expires_at: Millis, writer: &str) -> Committed;
    fn close_slot(&self, room: &str, seq: u64, taken_at: Millis, expires_at: Millis) -> bool;
    fn seq_state(&self, room: &str) -> SeqState;
    fn slots(&self, room: &str, after: u64, upto: u64, now: Millis) -> Vec<Slot>;
    fn advance_settled(&self, room: &str, seq: u64) -> ();
    fn history_before(&self, room: &str, before: Option<u64>, limit: u32, now: Millis) -> Page;
    fn history_after(&self, room: &str, after: u64, limit: u32, now: Millis) -> Page;
    fn find_message(&self, room: &str, author: &str, id: &str, now: Millis) -> Option<Message>;
    fn apply_change(&self, room: &str, target: u64, change: &Message) -> ChangeApplied;
    fn revoke(&self, user: &str, until: Millis) -> ();
    fn revoked_until(&self, user: &str, now: Millis) -> Option<Millis>;
    fn mark_direct(&self, user: &str, id: &str, now: Millis, expires_at: Millis) -> bool;
}
