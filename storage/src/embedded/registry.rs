//! [`PluginRegistry`] for the embedded store.
//!
//! Two keyspaces, both keyed by the length-prefixed tenant and name:
//! - `plugins`: `[0] + tenant + name` holds the record (versions, active,
//!   previous; format in `records.rs`), and `[1] + tenant + name` the last
//!   version number handed out. The counter outlives `delete_plugin`, so a
//!   re-upload continues the numbering and an old version number never
//!   names different bytes.
//! - `plugin_components`: `tenant + name + version (u32 BE)` holds the
//!   component bytes (up to megabytes), kept apart so listing plugins never
//!   reads them.
//!
//! Every change is one atomic fjall batch with `SyncAll`, made under the
//! engine's `meta_lock` because numbering and activation read, then write.

use async_trait::async_trait;
use bytes::Bytes;
use fjall::PersistMode;

use super::engine::{Engine, map_fjall};
use super::records::{decode_record, encode_record};
use super::{EmbeddedStore, blocking};
use crate::registry::{activated, rolled_back, validate_plugin};
use crate::{PluginRecord, PluginRegistry, PluginVersion, PluginVersionMeta, StoreError};

const RECORD: u8 = 0;
const COUNTER: u8 = 1;

fn push_name(out: &mut Vec<u8>, name: &str) {
    // validate_plugin bounds names to 255 bytes.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

fn tenant_prefix(kind: u8, tenant: &str) -> Vec<u8> {
    let mut out = vec![kind];
    push_name(&mut out, tenant);
    out
}

fn plugin_key(kind: u8, tenant: &str, name: &str) -> Vec<u8> {
    let mut out = tenant_prefix(kind, tenant);
    push_name(&mut out, name);
    out
}

/// The components key prefix of one plugin; the version follows.
fn component_prefix(tenant: &str, name: &str) -> Vec<u8> {
    plugin_key(RECORD, tenant, name).split_off(1)
}

fn component_key(tenant: &str, name: &str, version: u32) -> Vec<u8> {
    let mut out = component_prefix(tenant, name);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

impl Engine {
    fn record(&self, tenant: &str, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let key = plugin_key(RECORD, tenant, name);
        match self.plugins.get(&key).map_err(map_fjall)? {
            Some(raw) => decode_record(tenant, name, &raw).map(Some),
            None => Ok(None),
        }
    }

    /// Every record whose key starts with `prefix` (one tenant's, or all).
    fn records(&self, prefix: &[u8]) -> Result<Vec<PluginRecord>, StoreError> {
        let mut out = Vec::new();
        for guard in self.plugins.prefix(prefix) {
            let (key, value) = guard.into_inner().map_err(map_fjall)?;
            let (tenant, name) = split_key(&key)?;
            out.push(decode_record(&tenant, &name, &value)?);
        }
        Ok(out)
    }

    fn meta_batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::SyncAll))
    }

    fn put_plugin(&self, record: &PluginRecord) -> Result<(), StoreError> {
        let mut batch = self.meta_batch();
        batch.insert(
            &self.plugins,
            plugin_key(RECORD, &record.tenant, &record.name),
            encode_record(record),
        );
        batch.commit().map_err(map_fjall)
    }

    /// Applies `change` to an existing record and stores it.
    fn update<T>(
        &self,
        tenant: &str,
        name: &str,
        change: impl FnOnce(&mut PluginRecord) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _guard = self
            .meta_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut record = self
            .record(tenant, name)?
            .ok_or_else(|| StoreError::Invalid(format!("tenant {tenant} has no plugin {name}")))?;
        let out = change(&mut record)?;
        self.put_plugin(&record)?;
        Ok(out)
    }
}

/// Splits a record key back into tenant and name.
fn split_key(key: &[u8]) -> Result<(String, String), StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: format!("plugin record key of {} bytes", key.len()),
    };
    let mut rest = key.get(1..).ok_or_else(corrupt)?;
    let mut take = || -> Result<String, StoreError> {
        let (&len, tail) = rest.split_first().ok_or_else(corrupt)?;
        let (name, tail) = tail
            .split_at_checked(usize::from(len))
            .ok_or_else(corrupt)?;
        rest = tail;
        String::from_utf8(name.to_vec()).map_err(|_| corrupt())
    };
    Ok((take()?, take()?))
}

#[async_trait]
impl PluginRegistry for EmbeddedStore {
    async fn put_version(
        &self,
        tenant: &str,
        name: &str,
        component: Bytes,
        sha256: &str,
        config: &str,
        uploaded_ms: u64,
    ) -> Result<PluginVersionMeta, StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        let (sha256, config) = (sha256.to_owned(), config.to_owned());
        blocking(move || {
            let _guard = engine
                .meta_lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let counter_key = plugin_key(COUNTER, &tenant, &name);
            let last = match engine.plugins.get(&counter_key).map_err(map_fjall)? {
                Some(raw) => <[u8; 4]>::try_from(&*raw)
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        what: format!("plugin version counter of {tenant}/{name}"),
                    })?,
                None => 0,
            };
            let version = last.checked_add(1).ok_or_else(|| {
                StoreError::Invalid(format!("plugin {name} has used up its version numbers"))
            })?;
            let meta = PluginVersionMeta {
                version,
                sha256,
                size_bytes: component.len() as u64,
                config,
                uploaded_ms,
            };
            let mut record = engine
                .record(&tenant, &name)?
                .unwrap_or_else(|| PluginRecord {
                    tenant: tenant.as_str().into(),
                    name: name.as_str().into(),
                    versions: Vec::new(),
                    active: None,
                    previous: None,
                });
            record.versions.push(meta.clone());
            // Bytes, record and counter in one atomic, fsynced batch.
            let mut batch = engine.meta_batch();
            batch.insert(
                &engine.components,
                component_key(&tenant, &name, version),
                component.to_vec(),
            );
            batch.insert(
                &engine.plugins,
                plugin_key(RECORD, &tenant, &name),
                encode_record(&record),
            );
            batch.insert(&engine.plugins, counter_key, version.to_be_bytes().to_vec());
            batch.commit().map_err(map_fjall)?;
            Ok(meta)
        })
        .await
    }

    async fn get_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<PluginVersion>, StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        blocking(move || {
            let Some(record) = engine.record(&tenant, &name)? else {
                return Ok(None);
            };
            let Some(meta) = record.versions.into_iter().find(|v| v.version == version) else {
                return Ok(None);
            };
            let key = component_key(&tenant, &name, version);
            let component = engine
                .components
                .get(&key)
                .map_err(map_fjall)?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("component bytes of {tenant}/{name} v{version}"),
                })?;
            Ok(Some(PluginVersion {
                meta,
                component: Bytes::copy_from_slice(&component),
            }))
        })
        .await
    }

    async fn plugin(&self, tenant: &str, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        blocking(move || engine.record(&tenant, &name)).await
    }

    async fn list_plugins(&self, tenant: &str) -> Result<Vec<PluginRecord>, StoreError> {
        validate_plugin(tenant, "x")?;
        let (engine, prefix) = (self.engine.clone(), tenant_prefix(RECORD, tenant));
        blocking(move || engine.records(&prefix)).await
    }

    async fn activate(&self, tenant: &str, name: &str, version: u32) -> Result<(), StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        blocking(move || engine.update(&tenant, &name, |r| activated(r, version))).await
    }

    async fn rollback(&self, tenant: &str, name: &str) -> Result<u32, StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        blocking(move || engine.update(&tenant, &name, rolled_back)).await
    }

    async fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        validate_plugin(tenant, name)?;
        let (engine, tenant, name) = (self.engine.clone(), tenant.to_owned(), name.to_owned());
        blocking(move || {
            let _guard = engine
                .meta_lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(record) = engine.record(&tenant, &name)? else {
                return Ok(false);
            };
            // The counter stays: version numbers are never reused.
            let mut batch = engine.meta_batch();
            batch.remove(&engine.plugins, plugin_key(RECORD, &tenant, &name));
            for meta in &record.versions {
                batch.remove(
                    &engine.components,
                    component_key(&tenant, &name, meta.version),
                );
            }
            batch.commit().map_err(map_fjall)?;
            Ok(true)
        })
        .await
    }

    async fn active_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let engine = self.engine.clone();
        blocking(move || {
            let mut all = engine.records(&[RECORD])?;
            all.retain(|r| r.active.is_some());
            Ok(all)
        })
        .await
    }
}
