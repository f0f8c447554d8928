//! Reconnect delays: exponential backoff with full jitter.

use std::time::Duration;

/// A random delay in `[0, min(cap, base · 2^attempt))`; `unit` in `[0, 1)`
/// is the random draw, so the schedule is testable.
pub fn backoff_delay(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.min(30)))
        .min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// A draw in `[0, 1)` from a fresh UUID's random bits.
pub(crate) fn unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_jittered_and_capped() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(30));
        let top: Vec<u128> = (0..9)
            .map(|a| backoff_delay(a, base, cap, 1.0).as_millis())
            .collect();
        assert_eq!(
            top,
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff_delay(40, base, cap, 1.0), cap);
        assert_eq!(backoff_delay(3, base, cap, 0.0), Duration::ZERO);
        assert_eq!(backoff_delay(3, base, cap, 0.5).as_millis(), 2000);
        for _ in 0..100 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
