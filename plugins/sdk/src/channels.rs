//! Publishing messages into the plugin's own tenant.

use crate::bindings::quiver::plugin::channels as wit;

/// Appends a message to `channel` (in this plugin's tenant) and returns its
/// offset. The message goes through the normal publish path but not through
/// plugins' `on_publish`, so a plugin cannot loop on its own output.
pub fn publish(
    channel: &str,
    payload: impl AsRef<[u8]>,
    headers: &[(String, String)],
) -> Result<u64, String> {
    wit::publish(channel, payload.as_ref(), headers)
}
