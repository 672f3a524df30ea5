//! Reconnect pacing: exponential backoff with jitter, as a pure state
//! machine (randomness is passed in) so it is testable without a clock.

use std::time::Duration;

use crate::config::Reconnect;

/// Delays between reconnect attempts for one outage.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: Reconnect,
    /// Failed attempts so far in this outage.
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: Reconnect) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Delay before the next attempt, or `None` when the policy forbids
    /// another one. `jitter` in `[0, 1]` picks a point in the upper half of
    /// the exponential delay, so a fleet of clients dropped together by one
    /// server restart does not reconnect in lockstep, yet each still waits
    /// at least half the nominal delay.
    pub(crate) fn next_delay(&self, jitter: f64) -> Option<Duration> {
        if !self.policy.enabled {
            return None;
        }
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            return None;
        }
        let nominal = self
            .policy
            .initial_backoff
            .saturating_mul(1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX))
            .min(self.policy.max_backoff);
        // mul_f64 panics on NaN or infinity, so sanitize before trusting it.
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = nominal / 2;
        Some(half + half.mul_f64(jitter))
    }

    /// Records a failed attempt.
    pub(crate) fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Failed attempts in this outage.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: Option<u32>) -> Reconnect {
        Reconnect {
            enabled: true,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_attempts,
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(policy(None));
        let mut upper = vec![];
        for _ in 0..6 {
            upper.push(b.next_delay(1.0).expect("unlimited"));
            b.failed();
        }
        let ms: Vec<u128> = upper.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_in_upper_half() {
        let b = Backoff::new(policy(None));
        assert_eq!(b.next_delay(0.0), Some(Duration::from_millis(50)));
        assert_eq!(b.next_delay(0.5), Some(Duration::from_millis(75)));
        // Out-of-range jitter is clamped rather than trusted.
        assert_eq!(b.next_delay(7.0), Some(Duration::from_millis(100)));
        assert_eq!(
            b.next_delay(f64::NAN)
                .map(|d| d >= Duration::from_millis(50)),
            Some(true)
        );
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let mut b = Backoff::new(policy(Some(2)));
        assert!(b.next_delay(0.0).is_some());
        b.failed();
        assert!(b.next_delay(0.0).is_some());
        b.failed();
        assert_eq!(b.next_delay(0.0), None);
        assert_eq!(b.failures(), 2);
    }

    #[test]
    fn disabled_never_retries() {
        assert_eq!(Backoff::new(Reconnect::disabled()).next_delay(0.5), None);
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(policy(None));
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.next_delay(1.0), Some(Duration::from_secs(1)));
    }
}
