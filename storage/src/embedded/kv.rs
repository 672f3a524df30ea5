//! [`KeyValueStore`] for the embedded store.
//!
//! Key: `[len(tenant): u8][tenant][len(namespace): u8][namespace][key]`, the
//! same length-prefixed layout as the message keys, so one tenant's (or one
//! plugin's) keys never share a prefix with another's.
//! Value, format 1: `[1][expires_at_ms: u64 BE, 0 = never][value]`.
//!
//! Every write is its own fjall batch with `PersistMode::SyncAll`, so it is
//! durable when the call returns. Writes take the engine's `meta_lock`:
//! `kv_increment` is a read-modify-write, and a concurrent `kv_set` or
//! sweep between its read and its write would otherwise be lost. A lock
//! (rather than the writer thread) keeps these rare calls off the append
//! path entirely. Expired values read as absent; writes to the same key
//! and the sweep (`sweep.rs`) delete them.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fjall::PersistMode;

use super::codec::Reader;
use super::engine::{Engine, map_fjall, now_ms};
use super::{EmbeddedStore, blocking};
use crate::kv::{incremented, validate_key, validate_value};
use crate::{KeyValueStore, KvScope, StoreError};

const KV_V1: u8 = 1;

/// The fjall key of `key` in `scope`.
fn kv_key(scope: &KvScope, key: &str) -> Result<Vec<u8>, StoreError> {
    validate_key(scope, key)?;
    let mut out = Vec::with_capacity(2 + scope.tenant.len() + scope.namespace.len() + key.len());
    for name in [&*scope.tenant, &*scope.namespace] {
        // validate_key bounds both names to 255 bytes.
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(key.as_bytes());
    Ok(out)
}

/// A stored value and its expiry (0 = never).
pub(crate) struct KvValue<'a> {
    pub(crate) expires_at_ms: u64,
    pub(crate) value: &'a [u8],
}

impl<'a> KvValue<'a> {
    pub(crate) fn decode(raw: &'a [u8]) -> Result<Self, StoreError> {
        let mut r = Reader::new(raw, "key-value");
        let version = r.u8()?;
        if version != KV_V1 {
            return Err(r.corrupt(&format!("unknown format version {version}")));
        }
        let expires_at_ms = u64::from_be_bytes(r.array()?);
        Ok(Self {
            expires_at_ms,
            value: r.rest(),
        })
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms <= now_ms
    }
}

fn encode(value: &[u8], expires_at_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + value.len());
    out.push(KV_V1);
    out.extend_from_slice(&expires_at_ms.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The expiry of a value written now with `ttl`: 0 (never) without one.
fn expiry(now_ms: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        // At least 1 ms in the future, so a tiny TTL is not "never".
        now_ms.saturating_add(ttl_ms.max(1))
    })
}

impl Engine {
    /// The live value under `key`, with its expiry.
    fn kv_live(&self, key: &[u8], now: u64) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let Some(raw) = self.kv.get(key).map_err(map_fjall)? else {
            return Ok(None);
        };
        let stored = KvValue::decode(&raw)?;
        Ok((!stored.is_expired(now)).then(|| (stored.value.to_vec(), stored.expires_at_ms)))
    }

    /// Writes (`Some`) or deletes (`None`) one key, durably.
    fn kv_write(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        match value {
            Some(value) => batch.insert(&self.kv, key, value),
            None => batch.remove(&self.kv, key),
        }
        batch.commit().map_err(map_fjall)
    }

    fn kv_locked<T>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves no half-written state (each
        // write is one atomic batch), so a poisoned lock is still usable.
        let _guard = self
            .meta_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(self)
    }
}

#[async_trait]
impl KeyValueStore for EmbeddedStore {
    async fn kv_get(&self, scope: &KvScope, key: &str) -> Result<Option<Bytes>, StoreError> {
        let key = kv_key(scope, key)?;
        let engine = self.engine.clone();
        blocking(move || Ok(engine.kv_live(&key, now_ms())?.map(|(v, _)| Bytes::from(v)))).await
    }

    async fn kv_set(
        &self,
        scope: &KvScope,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let key = kv_key(scope, key)?;
        validate_value(&value)?;
        let engine = self.engine.clone();
        blocking(move || {
            engine.kv_locked(|e| e.kv_write(key, Some(encode(&value, expiry(now_ms(), ttl)))))
        })
        .await
    }

    async fn kv_delete(&self, scope: &KvScope, key: &str) -> Result<bool, StoreError> {
        let key = kv_key(scope, key)?;
        let engine = self.engine.clone();
        blocking(move || {
            engine.kv_locked(|e| {
                let existed = e.kv_live(&key, now_ms())?.is_some();
                // Also removes an expired value, which reads as absent.
                e.kv_write(key, None)?;
                Ok(existed)
            })
        })
        .await
    }

    async fn kv_increment(
        &self,
        scope: &KvScope,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError> {
        let key = kv_key(scope, key)?;
        let engine = self.engine.clone();
        blocking(move || {
            engine.kv_locked(|e| {
                let now = now_ms();
                let current = e.kv_live(&key, now)?;
                let next = incremented(current.as_ref().map(|(v, _)| v.as_slice()), delta)?;
                // Without a TTL the key keeps the expiry it had.
                let expires = match ttl {
                    Some(_) => expiry(now, ttl),
                    None => current.map_or(0, |(_, expires)| expires),
                };
                e.kv_write(key, Some(encode(next.to_string().as_bytes(), expires)))?;
                Ok(next)
            })
        })
        .await
    }
}
