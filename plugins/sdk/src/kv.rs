//! The plugin's durable key-value store, private to this plugin in this
//! tenant (another plugin or tenant never sees these keys).
//!
//! Keys are 1 to 512 bytes, values at most 64 KiB. Errors are the store's
//! message (for example when it is unavailable); a plugin usually decides
//! whether to fail open or closed on them.

use std::time::Duration;

use crate::bindings::quiver::plugin::kv as wit;

fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
}

/// The value of `key`, or `None` if absent or expired.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    wit::get(key)
}

/// The value of `key` as UTF-8 text (invalid bytes replaced).
pub fn get_string(key: &str) -> Result<Option<String>, String> {
    Ok(get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Stores `value` under `key`; with a `ttl` it reads as absent after that.
pub fn set(key: &str, value: impl AsRef<[u8]>, ttl: Option<Duration>) -> Result<(), String> {
    wit::set(key, value.as_ref(), ttl_ms(ttl))
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, String> {
    wit::delete(key)
}

/// Atomically adds `delta` to the counter at `key` (absent counts as 0)
/// and returns the new value. A `ttl` (re)sets the key's expiry, which
/// makes fixed-window counters one call.
pub fn increment(key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, String> {
    wit::increment(key, delta, ttl_ms(ttl))
}
