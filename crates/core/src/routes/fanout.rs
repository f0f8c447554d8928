//! How a stored message reaches its room, and what the `fanout` function
//! does with a shard.
//!
//! - Rooms of up to `inline_max` members: inline, in the invocation that
//!   stored the message (one hop, fastest).
//! - Larger rooms: the first page of the member Query goes to the `fanout`
//!   function as a shard that also carries the Query's cursor. That shard
//!   reads the rest page by page, dispatching a shard per page, so pages
//!   are delivered in parallel by as many invocations as the budget allows.
//!
//! Every path is at-least-once: clients drop repeats by (room, seq).
//! Nothing is dropped silently: what runs out of time is re-queued, what
//! keeps failing is counted `Undelivered` and logged with room and seq.

use std::time::Duration;

use tokio::time::Instant;

use super::{Context, Delivery};
use crate::clock::Millis;
use crate::gateway::post_until;
use crate::metrics::Metric;
use crate::pacer::Pacer;
use crate::shard::{Dispatch, DispatchError, EVENT_LIMIT, Rest, Shard};
use crate::store::{Membership, StoreError};

/// A re-queue chain longer than this makes no progress: give up loudly.
const MAX_HOPS: u32 = 64;
/// Members read per Query page by a shard that reads the room: a few
/// shards' worth, so a room of 100,000 is read in a few dozen calls.
const PAGE_SHARDS: usize = 4;
/// Fewest targets worth a shard of their own (an asynchronous invocation)
/// when a room's message is spread over the budget's shares.
const MIN_SPREAD_SHARD: usize = 50;

/// Why the `fanout` function failed a shard: the invocation must fail, so
/// that Lambda retries it (and, after its retries, sends it to the failure
/// destination). The frames already delivered are counted `Redelivered`.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// Work that did not fit this invocation could not be re-queued.
    #[error("could not re-queue {what} of room {room} seq {seq}: {source}")]
    Requeue {
        /// What was left over.
        what: &'static str,
        /// The room.
        room: String,
        /// The message.
        seq: u64,
        /// Why the queue refused.
        source: DispatchError,
    },
}

/// What one shard did in this invocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShardReport {
    /// Frames the gateway accepted.
    pub delivered: usize,
    /// Connections found gone (and removed).
    pub gone: usize,
    /// Connections handed on to other shards: pages read, a remainder
    /// that ran out of time, posts to try again.
    pub requeued: usize,
    /// Frames given up on after every attempt.
    pub undelivered: usize,
    /// Shards dispatched.
    pub shards: usize,
}

impl Context<'_> {
    /// Delivers a stored message's frame to the room, except `exclude`.
    pub(super) async fn fan_out_room(
        &self,
        room: &str,
        seq: u64,
        frame: &str,
        exclude: Option<&str>,
        now: Millis,
    ) -> Result<Delivery, StoreError> {
        let Some(dispatch) = self.dispatch else {
            let members = self.store.members(room, now).await?;
            return Ok(self.deliver_members(members, frame, exclude, now).await);
        };
        let inline_max = self.config.fanout.inline_max;
        let page = self
            .store
            .members_page(room, None, inline_max + 1, now)
            .await?;
        let Some(after) = page.next else {
            return Ok(self
                .deliver_members(page.members, frame, exclude, now)
                .await);
        };
        let first = Shard {
            room: room.to_owned(),
            seq,
            frame: frame.to_owned(),
            targets: self.targets(page.members, exclude, now).await,
            rest: Some(Rest { after: Some(after) }),
            exclude: exclude.map(str::to_owned),
            attempt: 0,
            hops: 0,
            stored_at: now,
        };
        let queued = first.targets.len();
        let size = self.shard_size_for(room, now).await;
        match self.dispatch_cut(dispatch, first.clone(), size).await {
            Ok(shards) => {
                tracing::info!(%room, seq, queued, shards, "large room: fan-out handed to shards");
                Ok(Delivery {
                    queued,
                    ..Delivery::default()
                })
            }
            Err((e, handed)) => {
                // Nothing was lost yet; deliver here, as a small room would.
                // Pieces already handed over are delivered twice: count them.
                self.metrics.add(Metric::Redelivered, handed as f64);
                tracing::warn!(%room, seq, error = %e, "could not dispatch a shard; delivering inline");
                let members = self.store.members(room, now).await?;
                Ok(self.deliver_members(members, frame, exclude, now).await)
            }
        }
    }

    /// Live-token targets among `members` other than `exclude`; members
    /// whose token expired are closed.
    async fn targets(
        &self,
        members: Vec<Membership>,
        exclude: Option<&str>,
        now: Millis,
    ) -> Vec<String> {
        self.close_expired(&members, now).await;
        self.live_tokens(members, now)
            .into_iter()
            .map(|m| m.connection_id)
            .filter(|c| Some(c.as_str()) != exclude)
            .collect()
    }

    async fn deliver_members(
        &self,
        members: Vec<Membership>,
        frame: &str,
        exclude: Option<&str>,
        now: Millis,
    ) -> Delivery {
        let targets = self.targets(members, exclude, now).await;
        self.deliver_text(targets, frame).await
    }

    /// Targets per shard for a message to `room`. With a budget, the room
    /// is spread over every share of it: each `fanout` invocation posts at
    /// its share's rate, so a room cut into `shard_size` pieces would use
    /// only as many shares as it has pieces (a room of 1,000 two of ten)
    /// and take `shard_size / share` seconds. Cut into `members / shares`,
    /// a message reaches its last member in about `members / budget`.
    /// Without a budget, or if the count cannot be read, `shard_size`.
    async fn shard_size_for(&self, room: &str, now: Millis) -> usize {
        let f = &self.config.fanout;
        if f.budget_per_second == 0 || f.budget_shares <= 1 {
            return f.shard_size;
        }
        match self.store.member_count(room, now).await {
            Ok(members) => spread_size(members, f.budget_shares, f.shard_size),
            Err(e) => {
                tracing::warn!(%room, error = %e, "member count unreadable; shards of the configured size");
                f.shard_size
            }
        }
    }

    /// Dispatches `shard` cut into pieces that each fit one invocation and
    /// `size`; the first piece keeps `rest`. Returns how many were
    /// dispatched, or the error and how many targets were already handed on.
    async fn dispatch_cut(
        &self,
        dispatch: &dyn Dispatch,
        shard: Shard,
        size: usize,
    ) -> Result<usize, (DispatchError, usize)> {
        let pieces = cut(shard, size);
        let mut handed = 0;
        for (n, piece) in pieces.iter().enumerate() {
            if let Err(e) = dispatch.dispatch(piece).await {
                return Err((e, handed));
            }
            handed += piece.targets.len();
            self.metrics.add(Metric::ShardsDispatched, 1.0);
            tracing::debug!(room = %piece.room, seq = piece.seq, shard = n, targets = piece.targets.len(), "shard dispatched");
        }
        Ok(pieces.len())
    }
}

/// `members / shares` targets per shard, at least [`MIN_SPREAD_SHARD`] and
/// at most `max`.
fn spread_size(members: u64, shares: u32, max: usize) -> usize {
    let per_share = usize::try_from(members.div_ceil(u64::from(shares.max(1)))).unwrap_or(max);
    per_share.clamp(MIN_SPREAD_SHARD.min(max), max)
}

/// Cuts a shard into pieces of at most `size` targets, each under the
/// event limit with room to spare; the first keeps `rest`. Always at least
/// one piece, so a shard with no targets but a cursor still goes.
fn cut(shard: Shard, size: usize) -> Vec<Shard> {
    let budget = EVENT_LIMIT * 9 / 10;
    let base = shard.with_targets(Vec::new()).event_size() + 64;
    let mut pieces = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut bytes = base;
    for id in &shard.targets {
        let cost = id.len() + 3;
        if !current.is_empty() && (current.len() >= size.max(1) || bytes + cost > budget) {
            pieces.push(shard.with_targets(std::mem::take(&mut current)));
            bytes = base;
        }
        current.push(id.clone());
        bytes += cost;
    }
    if !current.is_empty() || pieces.is_empty() {
        pieces.push(shard.with_targets(current));
    }
    if let Some(first) = pieces.first_mut() {
        first.rest = shard.rest;
    }
    pieces
}

/// The `fanout` function: reads on through the room if the shard says so
/// (dispatching a shard per page), then delivers its own targets, paced by
/// the budget, starting no post it could not finish before `deadline`.
pub async fn fanout(
    ctx: &Context<'_>,
    dispatch: &dyn Dispatch,
    pacer: Option<&Pacer>,
    shard: Shard,
    deadline: Instant,
) -> Result<ShardReport, FanoutError> {
    let stop_at = stop_time(deadline, ctx.config.fanout.call_timeout);
    let mut report = ShardReport::default();
    if let Some(rest) = &shard.rest {
        spread(
            ctx,
            dispatch,
            &shard,
            rest.after.clone(),
            stop_at,
            &mut report,
        )
        .await?;
    }
    deliver_shard(ctx, dispatch, pacer, &shard, stop_at, &mut report).await?;
    tracing::info!(
        room = %shard.room, seq = shard.seq, attempt = shard.attempt, hops = shard.hops,
        delivered = report.delivered, gone = report.gone, requeued = report.requeued,
        undelivered = report.undelivered, shards = report.shards,
        since_stored_ms = ctx.now() - shard.stored_at,
        "shard done"
    );
    Ok(report)
}

/// When to stop starting work: early enough that posts in flight (each
/// bounded by the call timeout) and the re-queue finish before the
/// deadline, but never before half the time left, so every shard advances.
fn stop_time(deadline: Instant, call_timeout: Duration) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    let margin = (call_timeout + Duration::from_secs(1)).min(left / 2);
    deadline.checked_sub(margin).unwrap_or(deadline)
}

/// Reads the room from `after`, one page at a time, dispatching each page
/// as shards. Out of time, or with the store failing, it re-queues itself
/// from the last cursor instead of giving up.
async fn spread(
    ctx: &Context<'_>,
    dispatch: &dyn Dispatch,
    shard: &Shard,
    mut after: Option<String>,
    stop_at: Instant,
    report: &mut ShardReport,
) -> Result<(), FanoutError> {
    let page_limit = ctx
        .config
        .fanout
        .shard_size
        .saturating_mul(PAGE_SHARDS)
        .clamp(1, 5000);
    let size = ctx.shard_size_for(&shard.room, ctx.now()).await;
    loop {
        let now = ctx.now();
        let page = if Instant::now() >= stop_at {
            None
        } else {
            match ctx
                .store
                .members_page(&shard.room, after.as_deref(), page_limit, now)
                .await
            {
                Ok(page) => Some(page),
                Err(e) => {
                    tracing::warn!(room = %shard.room, seq = shard.seq, error = %e, "store failed reading the room; re-queueing the rest");
                    None
                }
            }
        };
        let Some(page) = page else {
            let rest = Shard {
                targets: Vec::new(),
                rest: Some(Rest { after }),
                hops: shard.hops + 1,
                ..shard.clone()
            };
            return requeue(ctx, dispatch, rest, "the rest of the room", report).await;
        };
        let targets = ctx
            .targets(page.members, shard.exclude.as_deref(), now)
            .await;
        let n = targets.len();
        match ctx
            .dispatch_cut(dispatch, shard.with_targets(targets), size)
            .await
        {
            Ok(shards) => {
                report.shards += shards;
                report.requeued += n;
            }
            Err((source, handed)) => {
                // The retry reads this page again: count what it repeats.
                ctx.metrics
                    .add(Metric::Redelivered, (report.requeued + handed) as f64);
                return Err(FanoutError::Requeue {
                    what: "a page",
                    room: shard.room.clone(),
                    seq: shard.seq,
                    source,
                });
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Posts the shard's own targets, then re-queues what did not get a post
/// in time and what failed and may succeed later.
async fn deliver_shard(
    ctx: &Context<'_>,
    dispatch: &dyn Dispatch,
    pacer: Option<&Pacer>,
    shard: &Shard,
    stop_at: Instant,
    report: &mut ShardReport,
) -> Result<(), FanoutError> {
    if shard.targets.is_empty() {
        return Ok(());
    }
    let config = &ctx.config.fanout;
    ctx.metrics
        .add(Metric::FanoutSize, shard.targets.len() as f64);
    let posted = post_until(
        ctx.gateway,
        shard.targets.iter().cloned(),
        shard.frame.as_bytes(),
        config,
        Some(stop_at),
        pacer,
    )
    .await;
    report.delivered += posted.delivered;
    report.gone += posted.gone.len();
    ctx.metrics.add(Metric::Delivered, posted.delivered as f64);
    ctx.metrics
        .add(Metric::GoneConnections, posted.gone.len() as f64);
    if !posted.gone.is_empty() {
        ctx.reap(posted.gone).await;
    }
    let mut undelivered = posted.refused;
    if !posted.not_started.is_empty() {
        let rest = Shard {
            hops: shard.hops + 1,
            ..shard.with_targets(posted.not_started)
        };
        requeue(ctx, dispatch, rest, "a remainder", report).await?;
    }
    if !posted.retry.is_empty() {
        if shard.attempt + 1 < config.attempts {
            let again = Shard {
                attempt: shard.attempt + 1,
                ..shard.with_targets(posted.retry)
            };
            requeue(ctx, dispatch, again, "failed posts", report).await?;
        } else {
            undelivered += posted.retry.len();
        }
    }
    if undelivered > 0 {
        report.undelivered += undelivered;
        ctx.metrics.add(Metric::Undelivered, undelivered as f64);
        tracing::error!(room = %shard.room, seq = shard.seq, undelivered, attempts = shard.attempt + 1, "frames undelivered after every attempt; those clients recover the message on resume");
    }
    Ok(())
}

/// Hands leftover work to a new shard. A chain that keeps re-queueing
/// without end is stopped and counted, not looped forever.
async fn requeue(
    ctx: &Context<'_>,
    dispatch: &dyn Dispatch,
    shard: Shard,
    what: &'static str,
    report: &mut ShardReport,
) -> Result<(), FanoutError> {
    let n = shard.targets.len();
    if shard.hops > MAX_HOPS {
        report.undelivered += n;
        ctx.metrics.add(Metric::Undelivered, n as f64);
        tracing::error!(room = %shard.room, seq = shard.seq, hops = shard.hops, what, undelivered = n, reading_on = shard.rest.is_some(), "fan-out re-queued too often without finishing; giving up on it");
        return Ok(());
    }
    // Leftovers keep the configured size: they are what did not fit.
    let size = ctx.config.fanout.shard_size;
    match ctx.dispatch_cut(dispatch, shard.clone(), size).await {
        Ok(shards) => {
            report.shards += shards;
            report.requeued += n;
            ctx.metrics.add(Metric::Requeued, n as f64);
            tracing::info!(room = %shard.room, seq = shard.seq, what, connections = n, hops = shard.hops, attempt = shard.attempt, "re-queued");
            Ok(())
        }
        Err((source, _)) => {
            ctx.metrics
                .add(Metric::Redelivered, report.delivered as f64);
            Err(FanoutError::Requeue {
                what,
                room: shard.room,
                seq: shard.seq,
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(targets: usize) -> Shard {
        Shard {
            room: "r".into(),
            seq: 1,
            frame: "x".repeat(1000),
            targets: (0..targets).map(|i| format!("conn-{i:012}")).collect(),
            rest: Some(Rest {
                after: Some("c".into()),
            }),
            exclude: None,
            attempt: 0,
            hops: 0,
            stored_at: 0,
        }
    }

    #[test]
    fn cut_keeps_every_target_once_and_the_cursor_on_the_first_piece() {
        let pieces = cut(shard(1234), 500);
        assert_eq!(
            pieces.iter().map(|p| p.targets.len()).collect::<Vec<_>>(),
            vec![500, 500, 234]
        );
        assert!(pieces[0].rest.is_some());
        assert!(pieces[1..].iter().all(|p| p.rest.is_none()));
        let all: Vec<&String> = pieces.iter().flat_map(|p| &p.targets).collect();
        assert_eq!(all.len(), 1234);
    }

    #[test]
    fn cut_fits_large_frames_under_the_event_limit() {
        let mut big = shard(8000);
        big.frame = "y".repeat(120 * 1024);
        let pieces = cut(big, 8000);
        assert!(pieces.len() > 1);
        assert!(
            pieces.iter().all(|p| p.event_size() < EVENT_LIMIT),
            "a piece is over the limit"
        );
        assert_eq!(pieces.iter().map(|p| p.targets.len()).sum::<usize>(), 8000);
    }

    #[test]
    fn a_room_is_spread_over_every_share_of_the_budget() {
        // The shipped defaults: shards of at most 500, ten shares.
        assert_eq!(spread_size(1_000, 10, 500), 100);
        assert_eq!(spread_size(5_000, 10, 500), 500);
        assert_eq!(spread_size(10_000, 10, 500), 500);
        assert_eq!(spread_size(501, 10, 500), 51);
        // Never so small that a shard is mostly overhead, never over the cap.
        assert_eq!(spread_size(120, 10, 500), 50);
        assert_eq!(spread_size(120, 10, 20), 20);
        assert_eq!(spread_size(0, 0, 500), 50);
    }

    #[test]
    fn a_cursor_without_targets_is_still_one_piece() {
        let pieces = cut(shard(0), 500);
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0].rest.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_time_leaves_a_margin_but_never_all_the_time() {
        let now = Instant::now();
        let long = stop_time(now + Duration::from_secs(60), Duration::from_secs(3));
        assert_eq!(long, now + Duration::from_secs(56));
        let short = stop_time(now + Duration::from_secs(2), Duration::from_secs(3));
        assert_eq!(short, now + Duration::from_secs(1));
    }
}
