use std::time::{Duration, Instant};

/// A token bucket, driven by the caller's clock so it stays deterministic
/// in tests. Tokens are kept in millitokens to avoid floating point.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    millitokens: u64,
    capacity: u64,
    per_sec: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let capacity = u64::from(burst.max(1)) * 1000;
        Self {
            millitokens: capacity,
            capacity,
            per_sec: u64::from(per_sec),
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        // per_sec tokens/s == per_sec millitokens/ms.
        let refill = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(self.per_sec);
        self.millitokens = self.millitokens.saturating_add(refill).min(self.capacity);
        if self.millitokens >= 1000 {
            self.millitokens -= 1000;
            return Ok(());
        }
        if self.per_sec == 0 {
            return Err(Duration::from_secs(3600));
        }
        let missing = 1000 - self.millitokens;
        Err(Duration::from_millis(missing.div_ceil(self.per_sec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        for _ in 0..3 {
            assert!(bucket.try_take(t0).is_ok());
        }
        let wait = bucket.try_take(t0).expect_err("bucket should be empty");
        assert_eq!(wait, Duration::from_millis(100));
        assert!(bucket.try_take(t0 + Duration::from_millis(100)).is_ok());
        assert!(bucket.try_take(t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn never_exceeds_capacity() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, 2, t0);
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.try_take(later).is_ok());
        assert!(bucket.try_take(later).is_ok());
        assert!(bucket.try_take(later).is_err());
    }
}
