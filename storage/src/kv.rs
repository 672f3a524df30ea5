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
