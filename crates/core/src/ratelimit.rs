//! The per-connection rate limit, as GCRA (the generic cell rate algorithm).
//!
//! GCRA is a token bucket that stores one number, the theoretical arrival
//! time (TAT), so a store can apply it atomically to one item. A message is
//! allowed when, after charging it, the TAT is at most `burst` intervals
//! ahead of now. `strikes` counts rejections since the client last sent at or
//! below the sustained rate; it drives closing abusive connections.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::config::RateLimit;

/// Stored limiter state of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateState {
    /// Theoretical arrival time, microseconds since the epoch.
    pub tat_us: i64,
    /// Rejections since the client last sent at or below the sustained rate.
    pub strikes: u32,
}

/// The verdict on one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allowed,
    /// Over the limit; `strikes` rejections in a row without recovering.
    Limited {
        /// Rejections so far.
        strikes: u32,
    },
}

/// Charges one message at `now` and returns the new state and the verdict.
pub fn charge(state: RateState, now: Millis, limit: &RateLimit) -> (RateState, Verdict) {
    let now_us = now.saturating_mul(1000);
    let interval = 1_000_000 / i64::from(limit.per_second.max(1));
    let tolerance = interval.saturating_mul(i64::from(limit.burst.max(1)));
    let recovered = state.tat_us <= now_us;
    let tat = state.tat_us.max(now_us).saturating_add(interval);
    if tat - now_us <= tolerance {
        let strikes = if recovered { 0 } else { state.strikes };
        (
            RateState {
                tat_us: tat,
                strikes,
            },
            Verdict::Allowed,
        )
    } else {
        let strikes = state.strikes.saturating_add(1);
        (
            RateState {
                tat_us: state.tat_us,
                strikes,
            },
            Verdict::Limited { strikes },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10,
        burst: 20,
        abuse_strikes: 100,
    };

    fn run(state: &mut RateState, now: Millis) -> Verdict {
        let (s, v) = charge(*state, now, &LIMIT);
        *state = s;
        v
    }

    #[test]
    fn burst_then_sustained_rate() {
        let mut s = RateState::default();
        let t0 = 1_000_000;
        for i in 0..20 {
            assert_eq!(
                run(&mut s, t0),
                Verdict::Allowed,
                "message {i} of the burst"
            );
        }
        assert_eq!(run(&mut s, t0), Verdict::Limited { strikes: 1 });
        // One token comes back every 100 ms.
        assert_eq!(run(&mut s, t0 + 99), Verdict::Limited { strikes: 2 });
        assert_eq!(run(&mut s, t0 + 100), Verdict::Allowed);
        assert_eq!(run(&mut s, t0 + 100), Verdict::Limited { strikes: 3 });
    }

    #[test]
    fn steady_sender_at_the_rate_is_never_limited() {
        let mut s = RateState::default();
        for i in 0..1000 {
            assert_eq!(run(&mut s, 5_000 + i * 100), Verdict::Allowed);
        }
    }

    #[test]
    fn strikes_accumulate_under_flood_and_reset_after_recovery() {
        let mut s = RateState::default();
        let mut strikes = 0;
        // 100 msg/s for 3 s: 10/s get through, the rest are struck.
        for i in 0..300 {
            if let Verdict::Limited { strikes: n } = run(&mut s, 10_000 + i * 10) {
                strikes = n;
            }
        }
        assert!(strikes >= 240, "strikes {strikes}");
        // After going quiet long enough for the bucket to drain, strikes reset.
        assert_eq!(run(&mut s, 60_000), Verdict::Allowed);
        assert_eq!(s.strikes, 0);
    }
}
