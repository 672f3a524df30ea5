//! Checking that one subscription sees every offset exactly once, in order.
//!
//! The client promises strictly increasing offsets with no gap across
//! reconnects; this is the load test's independent check of that promise.

use serde::Serialize;

/// Offsets seen by one subscription, against the `+1` rule.
#[derive(Debug, Clone, Copy)]
pub struct OffsetCheck {
    /// The last offset seen (initially the subscription's starting point,
    /// so a missing first message counts as a gap too).
    last: u64,
    /// Messages seen, in order or not.
    seen: u64,
    gaps: u64,
    duplicates: u64,
}

/// What the checks found, summed over subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OffsetTally {
    /// Offsets skipped: each missing offset counts once.
    pub gaps: u64,
    /// Messages whose offset was not above the previous one (a repeat or a
    /// step backwards).
    pub duplicates: u64,
}

impl OffsetCheck {
    /// A check for a subscription that starts after offset `start` (its
    /// `head_offset` when subscribed live, or its `since`).
    pub fn new(start: u64) -> Self {
        Self {
            last: start,
            seen: 0,
            gaps: 0,
            duplicates: 0,
        }
    }

    /// Accounts for one delivered offset.
    pub fn observe(&mut self, offset: u64) {
        self.seen += 1;
        match offset.checked_sub(self.last) {
            Some(1) => self.last = offset,
            Some(0) | None => self.duplicates += 1,
            Some(step) => {
                self.gaps += step - 1;
                self.last = offset;
            }
        }
    }

    /// The highest offset seen, or the start if none was.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Messages observed so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn tally(&self) -> OffsetTally {
        OffsetTally {
            gaps: self.gaps,
            duplicates: self.duplicates,
        }
    }
}

impl OffsetTally {
    pub fn add(&mut self, other: OffsetTally) {
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
    }

    pub fn is_clean(&self) -> bool {
        self.gaps == 0 && self.duplicates == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(start: u64, offsets: &[u64]) -> OffsetCheck {
        let mut check = OffsetCheck::new(start);
        for offset in offsets {
            check.observe(*offset);
        }
        check
    }

    #[test]
    fn consecutive_offsets_are_clean() {
        let c = check(10, &[11, 12, 13, 14]);
        assert!(c.tally().is_clean());
        assert_eq!((c.last(), c.seen()), (14, 4));
    }

    #[test]
    fn skipped_offsets_count_one_each() {
        // 2 missing at the start (1, 2), then 5 and 6 missing.
        let c = check(0, &[3, 4, 7]);
        assert_eq!(
            c.tally(),
            OffsetTally {
                gaps: 4,
                duplicates: 0
            }
        );
    }

    #[test]
    fn repeats_and_regressions_are_duplicates() {
        let c = check(0, &[1, 2, 2, 1, 3]);
        assert_eq!(
            c.tally(),
            OffsetTally {
                gaps: 0,
                duplicates: 2
            }
        );
        assert_eq!(c.last(), 3);
    }

    #[test]
    fn tallies_add_up() {
        let mut total = OffsetTally::default();
        total.add(check(0, &[2]).tally());
        total.add(check(0, &[1, 1]).tally());
        assert_eq!(
            total,
            OffsetTally {
                gaps: 1,
                duplicates: 1
            }
        );
        assert!(!total.is_clean());
    }
}
