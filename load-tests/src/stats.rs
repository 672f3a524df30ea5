//! Latency histograms (HDR, microsecond resolution) and their summaries.
//!
//! Each task records into its own [`Latency`] and the scenario merges them
//! at the end, so the hot path takes no lock and shares no cache line.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly: one minute. Anything slower is
/// clamped to it, which still shows up as a terrible max.
const MAX_MICROS: u64 = 60_000_000;
/// Three significant digits: 0.1 % error at any magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Latency {
    pub fn new() -> Self {
        // Not a fallible path: the bounds are constants that satisfy HDR's
        // rules (1 <= low, high >= 2 * low, digits <= 5), checked by the tests.
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self { histogram }
    }

    /// Records one sample; sub-microsecond samples count as 1 µs and
    /// samples beyond a minute as a minute.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both sides share the same bounds, so nothing can fall outside.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Forgets every sample, keeping the allocation.
    pub fn reset(&mut self) {
        self.histogram.reset();
    }

    /// The figures reports show.
    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let q = |quantile: f64| ms(self.histogram.value_at_quantile(quantile));
        if self.histogram.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.histogram.len(),
            mean_ms: self.histogram.mean() / 1000.0,
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(self.histogram.max()),
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of one latency distribution, in milliseconds. All zero when
/// nothing was recorded (`count` says so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within HDR's 0.1 % precision plus one bucket.
    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002 + 0.001
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut latency = Latency::new();
        for micros in 1..=10_000 {
            latency.record(Duration::from_micros(micros));
        }
        let s = latency.summary();
        assert_eq!(s.count, 10_000);
        assert!(close(s.p50_ms, 5.0), "{s:?}");
        assert!(close(s.p90_ms, 9.0), "{s:?}");
        assert!(close(s.p99_ms, 9.9), "{s:?}");
        assert!(close(s.p999_ms, 9.99), "{s:?}");
        assert!(close(s.max_ms, 10.0), "{s:?}");
        assert!(close(s.mean_ms, 5.0005), "{s:?}");
    }

    #[test]
    fn merge_adds_samples_and_tails_show() {
        let mut fast = Latency::new();
        let mut slow = Latency::new();
        for _ in 0..990 {
            fast.record(Duration::from_micros(200));
        }
        for _ in 0..10 {
            slow.record(Duration::from_millis(40));
        }
        fast.merge(&slow);
        let s = fast.summary();
        assert_eq!(s.count, 1000);
        assert!(close(s.p50_ms, 0.2), "{s:?}");
        assert!(close(s.p99_ms, 0.2), "{s:?}");
        assert!(close(s.p999_ms, 40.0), "{s:?}");
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let mut latency = Latency::new();
        latency.record(Duration::from_nanos(10));
        latency.record(Duration::from_secs(3600));
        let s = latency.summary();
        assert_eq!(s.count, 2);
        assert!(close(s.max_ms, 60_000.0), "{s:?}");
        assert!(s.p50_ms <= 0.001 + f64::EPSILON, "{s:?}");
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(Latency::new().summary(), Summary::default());
    }
}
