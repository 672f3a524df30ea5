//! The key-value store plugins use, scoped to a tenant and a plugin.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::StoreError;

/// Whose keys these are: one tenant's one plugin. Plugins of one tenant do
/// not see each other's keys, and no tenant sees another's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvScope {
    pub tenant: Arc<str>,
    /// The plugin's name within its tenant.
    pub namespace: Arc<str>,
}

impl KvScope {
    pub fn new(tenant: impl Into<Arc<str>>, namespace: impl Into<Arc<str>>) -> Self {
        Self {
            tenant: tenant.into(),
            namespace: namespace.into(),
        }
    }
}

/// Longest key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 64 * 1024;

/// Durable key-value data with optional expiry.
///
/// - Keys are 1 to [`MAX_KV_KEY_BYTES`] bytes, values at most
///   [`MAX_KV_VALUE_BYTES`]; anything else is [`StoreError::Invalid`].
/// - A key whose TTL has passed reads as absent (backends may delete it
///   later).
/// - `increment` is atomic: concurrent increments of one key from any
///   number of callers (and gateway nodes) never lose an update. It treats
///   an absent key as 0 and stores the counter as the decimal text of an
///   `i64`, so `get` reads it back; incrementing a value that is not such
///   text is [`StoreError::Invalid`]. Its `ttl`, when given, (re)sets the
///   key's expiry.
#[async_trait]
pub trait KeyValueStore: Send + Sync + 'static {
    async fn kv_get(&self, scope: &KvScope, key: &str) -> Result<Option<Bytes>, StoreError>;

    async fn kv_set(
        &self,
        scope: &KvScope,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError>;

    /// Returns whether the key existed.
    async fn kv_delete(&self, scope: &KvScope, key: &str) -> Result<bool, StoreError>;

    /// Adds `delta` and returns the new value.
    async fn kv_increment(
        &self,
        scope: &KvScope,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError>;
}

/// Checks a scope and key against the limits every backend enforces: the
/// tenant 1 to 255 bytes, the namespace (a plugin name) 1 to 64, the key 1
/// to [`MAX_KV_KEY_BYTES`].
pub(crate) fn validate_key(scope: &KvScope, key: &str) -> Result<(), StoreError> {
    crate::registry::validate_name("tenant", &scope.tenant, 255)?;
    crate::registry::validate_name(
        "namespace",
        &scope.namespace,
        crate::registry::MAX_PLUGIN_NAME_BYTES,
    )?;
    crate::registry::validate_name("key", key, MAX_KV_KEY_BYTES)
}

/// Checks a value's size against [`MAX_KV_VALUE_BYTES`].
pub(crate) fn validate_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_KV_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "value is {} bytes; the limit is {MAX_KV_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// The new value of an increment: `current` (the stored text, `None` when
/// absent) plus `delta`. Shared so every backend parses and overflows alike.
pub(crate) fn incremented(current: Option<&[u8]>, delta: i64) -> Result<i64, StoreError> {
    let base = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| {
                StoreError::Invalid(
                    "cannot increment a value that is not the decimal text of an i64".into(),
                )
            })?,
    };
    base.checked_add(delta)
        .ok_or_else(|| StoreError::Invalid(format!("incrementing {base} by {delta} overflows i64")))
}
