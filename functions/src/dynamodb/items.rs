//! Key design and item codecs for the single table.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | connection | `CONN#{id}` | `META` | user, name, rights, token expiry, limiter |
//! | membership (reverse) | `CONN#{id}` | `ROOM#{room}` | full copy, so cleanup and refresh never touch room partitions to find them |
//! | user → connection | `USER#{user}` | `CONN#{id}` | all devices of a user |
//! | membership | `ROOM#{room}` | `MEMBER#{id}` | broadcast = one Query on the room partition |
//! | watcher | `ROOM#{room}` | `WATCH#{id}` | copy of a membership with the presence right: joins, departures and typing read only these |
//! | room counter | `ROOM#{room}` | `SEQ` | `seq`, bumped by atomic `ADD` |
//! | history | `HIST#{room}` | `MSG#{seq:020}` | zero-padded so string order is seq order |
//! | send marker | `IDEM#{room}` | `{len(user)}:{user}#{id}` | idempotency; the length prefix keeps user/id pairs unambiguous |
//! | direct marker | `DM#{len(user)}:{user}` | `{id}` | idempotency for direct messages |
//!
//! Every item has `expiresAt` (seconds, DynamoDB TTL), written rounded up
//! from milliseconds; reads drop items whose `expiresAt` has passed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::auth::RoomRights;
use crate::clock::Millis;
use crate::protocol::{Message, Sender};
use crate::ratelimit::RateState;
use crate::store::{ConnectionRecord, Membership, StoreError};

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const EXPIRES: &str = "expiresAt";

pub(crate) fn conn_pk(id: &str) -> String {
    format!("CONN#{id}")
}
pub(crate) const META: &str = "META";
pub(crate) fn room_sk(room: &str) -> String {
    format!("ROOM#{room}")
}
pub(crate) fn user_pk(user: &str) -> String {
    format!("USER#{user}")
}
pub(crate) fn conn_sk(id: &str) -> String {
    format!("CONN#{id}")
}
pub(crate) fn room_pk(room: &str) -> String {
    format!("ROOM#{room}")
}
pub(crate) fn member_sk(id: &str) -> String {
    format!("MEMBER#{id}")
}
pub(crate) const MEMBER_PREFIX: &str = "MEMBER#";
pub(crate) fn watch_sk(id: &str) -> String {
    format!("WATCH#{id}")
}
pub(crate) const WATCH_PREFIX: &str = "WATCH#";
pub(crate) const ROOM_PREFIX: &str = "ROOM#";
pub(crate) const SEQ: &str = "SEQ";
pub(crate) fn hist_pk(room: &str) -> String {
    format!("HIST#{room}")
}
pub(crate) fn msg_sk(seq: u64) -> String {
    format!("MSG#{seq:020}")
}
pub(crate) const MSG_PREFIX: &str = "MSG#";
pub(crate) fn idem_pk(room: &str) -> String {
    format!("IDEM#{room}")
}
pub(crate) fn idem_sk(user: &str, id: &str) -> String {
    format!("{}:{user}#{id}", user.len())
}
pub(crate) fn dm_pk(user: &str) -> String {
    format!("DM#{}:{user}", user.len())
}

/// Milliseconds → TTL seconds, rounded up so an item never expires early.
pub(crate) fn ttl_secs(ms: Millis) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// Whether an item with TTL `expires_secs` is still live at `now`.
pub(crate) fn live(expires_secs: i64, now: Millis) -> bool {
    expires_secs.saturating_mul(1000) > now
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// Reads typed attributes, naming the item in every error.
pub(crate) struct Reader<'a> {
    item: &'a Item,
    key: String,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(item: &'a Item) -> Self {
        let part = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .map_or("?", String::as_str)
        };
        let key = format!("{}/{}", part(PK), part(SK));
        Self { item, key }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::CorruptItem {
            key: self.key.clone(),
            reason,
        }
    }

    pub(crate) fn string(&self, name: &str) -> Result<String, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            Some(_) => Err(self.corrupt(format!("{name} is not a string"))),
            None => Err(self.corrupt(format!("{name} is missing"))),
        }
    }

    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| self.corrupt(format!("{name} is not a valid number: {v}"))),
            Some(_) => Err(self.corrupt(format!("{name} is not a number"))),
            None => Err(self.corrupt(format!("{name} is missing"))),
        }
    }

    pub(crate) fn number_or<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
    ) -> Result<T, StoreError> {
        if self.item.contains_key(name) {
            self.number(name)
        } else {
            Ok(default)
        }
    }

    /// A string attribute that items written before it existed lack.
    pub(crate) fn string_or_empty(&self, name: &str) -> Result<String, StoreError> {
        if self.item.contains_key(name) {
            self.string(name)
        } else {
            Ok(String::new())
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            Some(_) => Err(self.corrupt(format!("{name} is not a boolean"))),
            None => Err(self.corrupt(format!("{name} is missing"))),
        }
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        let raw = self.string(name)?;
        serde_json::from_str(&raw)
            .map_err(|e| self.corrupt(format!("{name} is not valid JSON: {e}")))
    }

    /// A JSON text attribute that most items lack.
    pub(crate) fn json_opt<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        if self.item.contains_key(name) {
            self.json(name).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn expires(&self) -> Result<i64, StoreError> {
        self.number(EXPIRES)
    }
}

pub(crate) fn connection_item(c: &ConnectionRecord) -> Item {
    let rooms = serde_json::to_string(&c.rooms).unwrap_or_else(|_| "{}".into());
    let mut item = key(conn_pk(&c.connection_id), META);
    item.extend([
        ("connectionId".to_owned(), s(&c.connection_id)),
        ("user".to_owned(), s(&c.user)),
        ("name".to_owned(), s(&c.name)),
        ("rooms".to_owned(), s(rooms)),
        ("direct".to_owned(), AttributeValue::Bool(c.direct)),
        ("tokenExp".to_owned(), n(c.token_exp)),
        ("connectedAt".to_owned(), n(c.connected_at)),
        ("refreshedAt".to_owned(), n(c.refreshed_at)),
        ("rateTat".to_owned(), n(c.rate.tat_us)),
        ("rateStrikes".to_owned(), n(c.rate.strikes)),
        (EXPIRES.to_owned(), n(ttl_secs(c.expires_at))),
    ]);
    item
}

pub(crate) fn connection_from(item: &Item) -> Result<ConnectionRecord, StoreError> {
    let r = Reader::new(item);
    Ok(ConnectionRecord {
        connection_id: r.string("connectionId")?,
        user: r.string("user")?,
        name: r.string("name")?,
        rooms: r.json::<RoomRights>("rooms")?,
        direct: r.boolean("direct")?,
        token_exp: r.number("tokenExp")?,
        connected_at: r.number("connectedAt")?,
        refreshed_at: r.number_or("refreshedAt", 0)?,
        rate: RateState {
            tat_us: r.number_or("rateTat", 0)?,
            strikes: r.number_or("rateStrikes", 0)?,
        },
        expires_at: r.expires()?.saturating_mul(1000),
    })
}

fn membership_attrs(m: &Membership) -> [(String, AttributeValue); 8] {
    [
        ("room".to_owned(), s(&m.room)),
        ("connectionId".to_owned(), s(&m.connection_id)),
        ("user".to_owned(), s(&m.user)),
        ("name".to_owned(), s(&m.name)),
        ("presence".to_owned(), AttributeValue::Bool(m.presence)),
        ("joinedAt".to_owned(), n(m.joined_at)),
        ("tokenExp".to_owned(), n(m.token_exp)),
        (EXPIRES.to_owned(), n(ttl_secs(m.expires_at))),
    ]
}

/// The room-partition item.
pub(crate) fn member_item(m: &Membership) -> Item {
    let mut item = key(room_pk(&m.room), member_sk(&m.connection_id));
    item.extend(membership_attrs(m));
    item
}

/// The watcher item: a copy of a membership with the presence right, in its
/// own key range so that finding whom to tell never reads the whole room.
pub(crate) fn watch_item(m: &Membership) -> Item {
    let mut item = key(room_pk(&m.room), watch_sk(&m.connection_id));
    item.extend(membership_attrs(m));
    item
}

/// The reverse item under the connection.
pub(crate) fn reverse_item(m: &Membership) -> Item {
    let mut item = key(conn_pk(&m.connection_id), room_sk(&m.room));
    item.extend(membership_attrs(m));
    item
}

pub(crate) fn membership_from(item: &Item) -> Result<Membership, StoreError> {
    let r = Reader::new(item);
    Ok(Membership {
        room: r.string("room")?,
        connection_id: r.string("connectionId")?,
        user: r.string("user")?,
        name: r.string("name")?,
        presence: r.boolean("presence")?,
        joined_at: r.number("joinedAt")?,
        expires_at: r.expires()?.saturating_mul(1000),
        // Items written before token expiry was copied here have none.
        token_exp: r.number("tokenExp").unwrap_or(i64::MAX),
    })
}

pub(crate) fn message_item(m: &Message, expires_at: Millis) -> Item {
    let mut item = key(hist_pk(&m.room), msg_sk(m.seq));
    item.extend([
        ("room".to_owned(), s(&m.room)),
        ("seq".to_owned(), n(m.seq)),
        ("id".to_owned(), s(&m.id)),
        ("user".to_owned(), s(&m.from.user)),
        ("name".to_owned(), s(&m.from.name)),
        // JSON text keeps any payload exact (numbers, nulls, key order).
        ("data".to_owned(), s(m.data.to_string())),
        ("ts".to_owned(), n(m.ts)),
        (EXPIRES.to_owned(), n(ttl_secs(expires_at))),
    ]);
    if !m.epoch.is_empty() {
        item.insert("epoch".to_owned(), s(&m.epoch));
    }
    if let Some(change) = &m.change {
        item.insert(CHANGE.to_owned(), s(json_text(change)));
    }
    if let Some(revision) = &m.revision {
        item.insert(REVISION.to_owned(), s(json_text(revision)));
        item.insert(REVISION_SEQ.to_owned(), n(revision.seq));
    }
    item
}

/// On a change event: the `Change` it makes, as JSON text.
pub(crate) const CHANGE: &str = "change";
/// On a changed message: its latest `Revision`, as JSON text, and that
/// revision's seq (`revSeq`, what a later change's condition compares).
pub(crate) const REVISION: &str = "rev";
pub(crate) const REVISION_SEQ: &str = "revSeq";
/// On a deleted message: true (a delete is final).
pub(crate) const DELETED: &str = "deleted";
/// On a message: the seqs of its edits (a number set), erased by a delete.
pub(crate) const VERSIONS: &str = "versions";

/// Plain data as JSON text (it has no maps with non-string keys: writing
/// it cannot fail).
pub(crate) fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn message_from(item: &Item) -> Result<Message, StoreError> {
    let r = Reader::new(item);
    Ok(Message {
        room: r.string("room")?,
        seq: r.number("seq")?,
        // Messages stored before epochs have none.
        epoch: r.string_or_empty("epoch")?,
        id: r.string("id")?,
        from: Sender {
            user: r.string("user")?,
            name: r.string("name")?,
        },
        data: r.json("data")?,
        ts: r.number("ts")?,
        change: r.json_opt(CHANGE)?,
        revision: r.json_opt(REVISION)?,
    })
}

/// DynamoDB's item size limit.
pub(crate) const MAX_ITEM_BYTES: usize = 400 * 1024;

/// DynamoDB's size rule: attribute names plus values (numbers approximated
/// by their text length, which over-estimates slightly: safe).
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::Bool(_) => 1,
                    _ => 64,
                }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttl_rounds_up_and_liveness_is_exact_at_seconds() {
        assert_eq!(ttl_secs(2_000), 2);
        assert_eq!(ttl_secs(2_001), 3);
        assert!(live(3, 2_999));
        assert!(!live(3, 3_000));
    }

    #[test]
    fn keys_sort_and_do_not_collide() {
        assert!(msg_sk(9) < msg_sk(10));
        assert!(msg_sk(99_999) < msg_sk(100_000));
        assert_ne!(idem_sk("a#b", "c"), idem_sk("a", "b#c"));
    }

    #[test]
    fn items_round_trip() {
        let c = ConnectionRecord::new(
            "c1",
            &crate::auth::Identity {
                user: "u".into(),
                name: "U".into(),
                exp: 10,
                rooms: RoomRights::all(),
                direct: true,
            },
            5_000,
            9_000,
        );
        assert_eq!(connection_from(&connection_item(&c)).unwrap(), c);
        let mut m = Message {
            room: "r".into(),
            seq: 7,
            epoch: "9f2c41d07a3b5e68".into(),
            id: "i".into(),
            from: Sender {
                user: "u".into(),
                name: "U".into(),
            },
            data: json!({"b": [1, 2.5, null], "a": "x"}),
            ts: 3,
            change: None,
            revision: None,
        };
        assert_eq!(message_from(&message_item(&m, 10_000)).unwrap(), m);
        // Messages stored before epochs have none.
        m.epoch = String::new();
        let item = message_item(&m, 10_000);
        assert!(!item.contains_key("epoch"));
        assert_eq!(message_from(&item).unwrap(), m);
    }

    #[test]
    fn unknown_attributes_are_ignored() {
        let mut item = member_item(&Membership {
            room: "r".into(),
            connection_id: "c".into(),
            user: "u".into(),
            name: "U".into(),
            presence: true,
            joined_at: 1,
            expires_at: 2_000,
            token_exp: i64::MAX,
        });
        item.insert("addedByAFutureVersion".into(), s("whatever"));
        item.insert("nested".into(), AttributeValue::L(vec![n(1)]));
        assert_eq!(membership_from(&item).unwrap().connection_id, "c");
    }

    #[test]
    fn corrupt_items_name_their_key() {
        let mut item = connection_item(&ConnectionRecord::new(
            "c9",
            &crate::auth::Identity {
                user: "u".into(),
                name: "U".into(),
                exp: 10,
                rooms: RoomRights::default(),
                direct: false,
            },
            0,
            1_000,
        ));
        item.remove("user");
        let err = connection_from(&item).unwrap_err();
        assert!(
            matches!(&err, StoreError::CorruptItem { key, reason } if key == "CONN#c9/META" && reason.contains("user")),
            "{err}"
        );
        item.insert("user".into(), n(5));
        assert!(
            connection_from(&item)
                .unwrap_err()
                .to_string()
                .contains("not a string")
        );
        let mut item = item.clone();
        item.insert("user".into(), s("u"));
        item.insert("tokenExp".into(), n("abc"));
        assert!(
            connection_from(&item)
                .unwrap_err()
                .to_string()
                .contains("tokenExp")
        );
        item.insert("tokenExp".into(), n(1));
        item.insert("rooms".into(), s("{not json"));
        assert!(
            connection_from(&item)
                .unwrap_err()
                .to_string()
                .contains("rooms")
        );
    }
}
