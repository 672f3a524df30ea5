use quiver_storage::MessageId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Makes ULIDs: 48 bits of Unix milliseconds then 80 random bits, so ids
/// sort by creation time across the whole system. The randomness source is
/// seeded by the caller, keeping the session deterministic under test.
#[derive(Debug)]
pub(crate) struct IdGenerator {
    rng: SmallRng,
}

impl IdGenerator {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub(crate) fn next(&mut self, unix_ms: u64) -> MessageId {
        let time = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
        let random = self.rng.random::<u128>() & ((1u128 << 80) - 1);
        MessageId(time | random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered() {
        let mut ids = IdGenerator::new(7);
        let a = ids.next(1_000);
        let b = ids.next(1_001);
        assert!(a < b);
        assert_eq!(a.0 >> 80, 1_000);
    }
}
