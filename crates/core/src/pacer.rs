//! The fan-out budget: spaces PostToConnection calls so one `fanout`
//! invocation makes at most `rate` per second, from its first call.
//!
//! The stack's budget is split over the `fanout` function's reserved
//! concurrency, which caps how many invocations run at once, so the stack
//! as a whole stays under it without any shared counter to call. A pacer
//! belongs to one invocation, and has no burst: a burst per invocation
//! would let a stream of short invocations exceed the budget, and a pacer
//! kept by a process would make invocations that share a process (the
//! emulator runs concurrent invocations of one in-process function side by
//! side) share one invocation's share. Shards are sized so that a room's
//! message is spread over every share (`routes::fanout`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out send slots at a fixed rate to any number of tasks.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    burst: Duration,
    /// The theoretical arrival time of the next call.
    tat: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `per_second` calls; `None` for no cap.
    pub fn new(per_second: Option<f64>) -> Option<Self> {
        let rate = per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        Some(Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            burst: Duration::ZERO,
            tat: Mutex::new(None),
        })
    }

    /// Waits for the next slot; `false` (without waiting) if that slot is
    /// past `stop_at`, so a shard near its deadline re-queues instead.
    pub async fn wait(&self, stop_at: Instant) -> bool {
        let slot = {
            let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let current = tat.map_or(now, |t| t.max(now));
            let slot = current.checked_sub(self.burst).map_or(now, |s| s.max(now));
            if slot > stop_at {
                return false;
            }
            *tat = Some(current + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_means_no_pacer() {
        assert!(Pacer::new(None).is_none());
        assert!(Pacer::new(Some(0.0)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_to_the_rate_from_the_first() {
        let pacer = Pacer::new(Some(100.0)).unwrap();
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        // The first at once, then 10 ms apart: 150 calls take 1.49 s.
        assert!(pacer.wait(far).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 1..150 {
            assert!(pacer.wait(far).await);
        }
        let spent = start.elapsed();
        assert!(
            spent >= Duration::from_millis(1480) && spent <= Duration::from_millis(1500),
            "{spent:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_stop_is_refused_without_waiting() {
        let pacer = Pacer::new(Some(10.0)).unwrap();
        let start = Instant::now();
        let stop = start + Duration::from_millis(250);
        let mut granted = 0;
        while pacer.wait(stop).await {
            granted += 1;
        }
        // The slots at 0, 100 and 200 ms.
        assert_eq!(granted, 3);
        assert!(start.elapsed() <= Duration::from_millis(250));
    }
}
