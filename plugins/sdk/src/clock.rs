//! Time.

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> u64 {
    crate::bindings::quiver::plugin::clock::now_ms()
}
