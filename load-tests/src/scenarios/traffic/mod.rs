//! Publishers and subscribers shared by the scenarios that move messages
//! (fanout, chat, reconnect-storm, persist): paced or ack-bound publishing,
//! and subscribers that time each delivery and check its offset.

pub mod publisher;
pub mod subscriber;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
