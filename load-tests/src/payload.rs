//! The load payload: a small header saying when and by whom a message was
//! sent, padded to the requested size.
//!
//! Every scenario measures publish→deliver latency from this header rather
//! than from the server's `timestamp_ms`, which has millisecond resolution
//! and comes from a different clock. Publisher and subscriber run in the
//! same process, so one monotonic [`Clock`] serves both ends.

use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};

/// Bytes of the header: send time (u64 ns), publisher (u32), sequence (u64),
/// all little-endian. `--size` may not be smaller.
pub const HEADER_LEN: usize = 8 + 4 + 8;

/// The process-wide time base that payload timestamps count from.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds from the epoch to `at` (0 for instants before it).
    pub fn nanos(&self, at: Instant) -> u64 {
        // u64 nanoseconds last 584 years: no run gets near the limit.
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Time from `sent_nanos` (as returned by [`Clock::nanos`]) to `now`;
    /// zero if the stamp lies after `now`, which only a corrupt payload does.
    pub fn since(&self, sent_nanos: u64, now: Instant) -> Duration {
        Duration::from_nanos(self.nanos(now).saturating_sub(sent_nanos))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What a subscriber learns from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the message was (meant to be) sent, as [`Clock::nanos`].
    pub sent_nanos: u64,
    /// Which publisher sent it.
    pub publisher: u32,
    /// The publisher's own counter, from 0.
    pub seq: u64,
}

/// Builds a payload of exactly `size` bytes (at least [`HEADER_LEN`]); the
/// padding is zeros, which costs nothing to produce and is never read.
pub fn encode(stamp: Stamp, size: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(HEADER_LEN));
    buf.put_u64_le(stamp.sent_nanos);
    buf.put_u32_le(stamp.publisher);
    buf.put_u64_le(stamp.seq);
    buf.resize(size.max(HEADER_LEN), 0);
    buf.freeze()
}

/// Reads the header back; `None` when the payload is too short, which
/// means something else published on the load-test channel.
pub fn decode(payload: &[u8]) -> Option<Stamp> {
    let sent = payload.get(0..8)?.try_into().ok()?;
    let publisher = payload.get(8..12)?.try_into().ok()?;
    let seq = payload.get(12..20)?.try_into().ok()?;
    Some(Stamp {
        sent_nanos: u64::from_le_bytes(sent),
        publisher: u32::from_le_bytes(publisher),
        seq: u64::from_le_bytes(seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads_to_size() {
        let stamp = Stamp {
            sent_nanos: 0x0102_0304_0506_0708,
            publisher: 7,
            seq: u64::MAX - 1,
        };
        let payload = encode(stamp, 100);
        assert_eq!(payload.len(), 100);
        assert_eq!(decode(&payload), Some(stamp));
        assert!(payload[HEADER_LEN..].iter().all(|b| *b == 0));
    }

    #[test]
    fn never_shorter_than_the_header() {
        let stamp = Stamp {
            sent_nanos: 1,
            publisher: 0,
            seq: 2,
        };
        let payload = encode(stamp, 3);
        assert_eq!(payload.len(), HEADER_LEN);
        assert_eq!(decode(&payload), Some(stamp));
    }

    #[test]
    fn short_payloads_are_rejected() {
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(&[0; HEADER_LEN - 1]), None);
    }

    #[test]
    fn clock_measures_from_the_stamp() {
        let clock = Clock::new();
        let sent = Instant::now();
        let later = sent + Duration::from_micros(1500);
        let stamp = clock.nanos(sent);
        assert_eq!(clock.since(stamp, later), Duration::from_micros(1500));
        // A stamp from the future reads as zero, not as a huge latency.
        assert_eq!(clock.since(clock.nanos(later), sent), Duration::ZERO);
    }
}
