//! [`KeyValueStore`] on ScyllaDB: table `kv ((tenant, namespace, key)) ->
//! value`, expiry as the CQL TTL of `value`.
//!
//! `kv_get`, `kv_set` and `kv_delete` are plain statements. `kv_increment`
//! is a compare-and-set loop of lightweight transactions: read the value at
//! SERIAL, then `INSERT ... IF NOT EXISTS` or `UPDATE ... IF value = ?`,
//! and retry if another writer got in between. Counter columns would be
//! cheaper but cannot carry a TTL, cannot live next to a blob, and their
//! increments are not idempotent (a retried timeout double-counts), so
//! they cannot honour this trait. Increments are rare, plugin-driven
//! operations; within one node, increments of a key also queue on a local
//! lock so they do not fight each other in Paxos.
//!
//! Caveat of mixing: a plain write and an LWT on the same key are ordered
//! by their write timestamps, both taken from the database nodes' clocks.
//! Keep them NTP-synchronised (ScyllaDB requires it anyway).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::ScyllaStore;
use super::db::{Failure, unavailable};
use crate::kv::{incremented, validate_key, validate_value};
use crate::{KeyValueStore, KvScope, StoreError};

/// Compare-and-set attempts before giving up with `Unavailable`.
const CAS_ATTEMPTS: u32 = 64;

fn ttl_secs(ttl: Option<Duration>) -> i32 {
    // CQL TTLs are whole seconds; round up so a short TTL is not "never" (0).
    ttl.map_or(0, |d| {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    })
}

#[async_trait]
impl KeyValueStore for ScyllaStore {
    async fn kv_get(&self, scope: &KvScope, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(scope, key)?;
        let db = &self.inner.db;
        let row: Option<(Option<Vec<u8>>,)> = db
            .row(&db.st.kv_get, (&*scope.tenant, &*scope.namespace, key))
            .await?;
        Ok(row.map(|(v,)| Bytes::from(v.unwrap_or_default())))
    }

    async fn kv_set(
        &self,
        scope: &KvScope,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        validate_key(scope, key)?;
        validate_value(&value)?;
        let db = &self.inner.db;
        let values = (
            &*scope.tenant,
            &*scope.namespace,
            key,
            value.as_ref(),
            ttl_secs(ttl),
        );
        db.exec(&db.st.kv_set, values).await?;
        Ok(())
    }

    async fn kv_delete(&self, scope: &KvScope, key: &str) -> Result<bool, StoreError> {
        let existed = self.kv_get(scope, key).await?.is_some();
        let db = &self.inner.db;
        db.exec(&db.st.kv_delete, (&*scope.tenant, &*scope.namespace, key))
            .await?;
        Ok(existed)
    }

    async fn kv_increment(
        &self,
        scope: &KvScope,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError> {
        validate_key(scope, key)?;
        let _local = self.inner.kv_lock(scope, key).lock().await;
        let db = &self.inner.db;
        let (t, n) = (&*scope.tenant, &*scope.namespace);
        for attempt in 0..CAS_ATTEMPTS {
            let row: Option<(Option<Vec<u8>>, Option<i32>)> =
                db.row(&db.st.kv_get_serial, (t, n, key)).await?;
            // Without a TTL the key keeps the one it has (the remaining
            // seconds of the stored value), as the trait promises.
            let keep = row.as_ref().and_then(|(_, left)| *left).unwrap_or(0);
            let ttl = if ttl.is_some() { ttl_secs(ttl) } else { keep };
            let current = row.as_ref().map(|(v, _)| v.as_deref().unwrap_or_default());
            let next = incremented(current, delta)?;
            let text = next.to_string();
            let applied = match current {
                None => {
                    db.lwt(&db.st.kv_create, (t, n, key, text.as_bytes(), ttl))
                        .await
                }
                Some(old) => {
                    db.lwt(&db.st.kv_swap, (ttl, text.as_bytes(), t, n, key, old))
                        .await
                }
            };
            match applied {
                Ok(true) => return Ok(next),
                Ok(false) => {}
                // A timed-out LWT may or may not have applied; the loop's next
                // read tells, but then the value cannot be attributed to us,
                // so report the failure rather than risk a double count.
                Err(Failure { error, .. }) => return Err(error),
            }
            // Another node won this round: back off a little, then retry.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)) * 2)).await;
        }
        Err(unavailable(
            "too much contention incrementing one key; retry later",
        ))
    }
}

impl super::Inner {
    /// The local lock increments of `key` queue on (striped by hash).
    fn kv_lock(&self, scope: &KvScope, key: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (scope, key).hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.kv_locks.len() as u64).unwrap_or(0);
        &self.kv_locks[index]
    }
}
