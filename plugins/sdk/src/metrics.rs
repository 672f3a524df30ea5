//! Counters on the gateway's metrics endpoint, exported as
//! `quiver_plugin_custom_total{tenant, plugin, name}`.

/// Adds `value` to the counter `name` (1 to 64 characters of `[a-z0-9_]`).
/// A plugin may use at most 32 distinct names; the gateway drops others
/// (and logs that once), so never build names from user data.
pub fn counter_add(name: &str, value: u64) {
    crate::bindings::quiver::plugin::metrics::counter_add(name, value);
}

/// Adds 1 to the counter `name`.
pub fn increment(name: &str) {
    counter_add(name, 1);
}
