//! Percentiles over recorded samples.

/// Summary of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Summary {
    /// Median.
    pub(crate) p50_ms: f64,
    /// 95th percentile.
    pub(crate) p95_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Largest.
    pub(crate) max_ms: f64,
}

/// Nearest-rank percentiles of `samples` (microseconds).
pub(crate) fn summarize(samples: &mut [u64]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1] as f64 / 1000.0
    };
    Summary {
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: samples[samples.len() - 1] as f64 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        let sum = summarize(&mut s);
        assert_eq!(
            (sum.p50_ms, sum.p95_ms, sum.p99_ms, sum.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(summarize(&mut []).max_ms, 0.0);
    }
}
