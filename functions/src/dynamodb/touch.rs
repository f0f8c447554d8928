//! Charging a frame to its connection's rate limit (GCRA) in the update's
//! own condition, with no read first.
//!
//! GCRA keeps one number, the theoretical arrival time `tat`; a frame at
//! `now` moves it to `max(tat, now) + interval` and is allowed while
//! `tat - now` stays within the burst. DynamoDB cannot compute `max`, so the
//! three outcomes are three conditional updates, and the usual one goes
//! first:
//! - **recovered** (`tat <= now`, a client within its rate): `tat = now +
//!   interval`, strikes reset. One call for almost every frame.
//! - **burst** (`now < tat <= now + tolerance - interval`): `tat = tat +
//!   interval`. It is an increment, not a compare-and-set, so frames of one
//!   connection handled by concurrent invocations all succeed instead of
//!   conflicting.
//! - **limited** (beyond): `strikes + 1`, `tat` unchanged.
//!
//! A failed condition returns the item as it was
//! (`ReturnValuesOnConditionCheckFailure`), which says which outcome applies:
//! a second call. Every update returns the item as it is after (`ALL_NEW`),
//! which is the connection record the route needs: no `GetItem`.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::items::*;
use super::{DynamoStore, unavailable};
use crate::clock::Millis;
use crate::config::RateLimit;
use crate::ratelimit::Verdict;
use crate::store::{StoreError, Touched};

/// One frame's GCRA figures, in microseconds.
#[derive(Clone, Copy, Debug)]
struct Gcra {
    now_us: i64,
    interval: i64,
    /// The largest `tat` that still allows one more frame.
    limit_us: i64,
}

impl Gcra {
    fn new(now: Millis, limit: &RateLimit) -> Self {
        let now_us = now.saturating_mul(1000);
        let interval = 1_000_000 / i64::from(limit.per_second.max(1));
        let tolerance = interval.saturating_mul(i64::from(limit.burst.max(1)));
        Self {
            now_us,
            interval,
            limit_us: now_us.saturating_add(tolerance).saturating_sub(interval),
        }
    }

    /// Which outcome applies to a connection whose `tat` is this.
    fn outcome(&self, tat_us: i64) -> Outcome {
        if tat_us <= self.now_us {
            Outcome::Recovered
        } else if tat_us <= self.limit_us {
            Outcome::Burst
        } else {
            Outcome::Limited
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Recovered,
    Burst,
    Limited,
}

/// What one conditional update found.
enum Charged {
    /// Applied: the item after it.
    Applied(Item),
    /// The condition failed: the item as it is (another outcome applies).
    Moved(Item),
    /// There is no such connection.
    Missing,
}

impl DynamoStore {
    pub(super) async fn touch_connection(
        &self,
        id: &str,
        now: Millis,
        limit: &RateLimit,
    ) -> Result<Touched, StoreError> {
        let gcra = Gcra::new(now, limit);
        let mut outcome = Outcome::Recovered;
        for _ in 0..self.options.cas_attempts.saturating_mul(2) {
            match self.charge(id, outcome, &gcra).await? {
                Charged::Applied(item) => return touched(&item, id, now, outcome),
                Charged::Moved(item) => {
                    let current = connection_from(&item)?;
                    if current.expires_at <= now {
                        return Err(not_found(id));
                    }
                    outcome = gcra.outcome(current.rate.tat_us);
                }
                Charged::Missing => return Err(not_found(id)),
            }
        }
        Err(StoreError::Conflict {
            key: format!("{}/{META}", conn_pk(id)),
        })
    }

    async fn charge(&self, id: &str, outcome: Outcome, g: &Gcra) -> Result<Charged, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conn_pk(id), META)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let request = match outcome {
            Outcome::Recovered => request
                .update_expression("SET rateTat = :next, rateStrikes = :zero")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(rateTat) OR rateTat <= :now)",
                )
                .expression_attribute_values(":next", n(g.now_us.saturating_add(g.interval)))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":now", n(g.now_us)),
            Outcome::Burst => request
                .update_expression("SET rateTat = rateTat + :interval")
                .condition_expression(
                    "attribute_exists(pk) AND rateTat > :now AND rateTat <= :limit",
                )
                .expression_attribute_values(":interval", n(g.interval))
                .expression_attribute_values(":now", n(g.now_us))
                .expression_attribute_values(":limit", n(g.limit_us)),
            Outcome::Limited => request
                .update_expression("SET rateStrikes = if_not_exists(rateStrikes, :zero) + :one")
                .condition_expression("attribute_exists(pk) AND rateTat > :limit")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(g.limit_us)),
        };
        match request.send().await {
            Ok(out) => Ok(Charged::Applied(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(c
                    .item()
                    .filter(|i| !i.is_empty())
                    .cloned()
                    .map_or(Charged::Missing, Charged::Moved)),
                _ => Err(unavailable("touch")(e)),
            },
        }
    }
}

/// The route's view of a charged frame. An expired connection (its TTL
/// deletion still pending) is not one.
fn touched(item: &Item, id: &str, now: Millis, outcome: Outcome) -> Result<Touched, StoreError> {
    let connection = connection_from(item)?;
    if connection.expires_at <= now {
        return Err(not_found(id));
    }
    let verdict = match outcome {
        Outcome::Recovered | Outcome::Burst => Verdict::Allowed,
        Outcome::Limited => Verdict::Limited {
            strikes: connection.rate.strikes,
        },
    };
    Ok(Touched {
        connection,
        verdict,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "connection",
        key: id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{RateState, charge};

    /// The three outcomes agree with the domain's GCRA for every `tat`.
    #[test]
    fn outcomes_match_the_domain_rate_limiter() {
        let limit = RateLimit {
            per_second: 10,
            burst: 20,
            abuse_strikes: 100,
        };
        let now: Millis = 1_000_000;
        let g = Gcra::new(now, &limit);
        for tat_ms in (now - 500..now + 2_500).step_by(7) {
            let state = RateState {
                tat_us: tat_ms * 1000,
                strikes: 3,
            };
            let (next, verdict) = charge(state, now, &limit);
            let ours = g.outcome(state.tat_us);
            match (ours, verdict) {
                (Outcome::Recovered, Verdict::Allowed) => {
                    assert_eq!(next.tat_us, g.now_us + g.interval);
                    assert_eq!(next.strikes, 0);
                }
                (Outcome::Burst, Verdict::Allowed) => {
                    assert_eq!(next.tat_us, state.tat_us + g.interval);
                    assert_eq!(next.strikes, 3);
                }
                (Outcome::Limited, Verdict::Limited { strikes }) => assert_eq!(strikes, 4),
                other => panic!("tat {tat_ms}: {other:?}"),
            }
        }
    }
}
