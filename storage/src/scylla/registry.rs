//! [`PluginRegistry`] on ScyllaDB.
//!
//! - `plugins ((tenant), name)`: last version number, live flag, active and
//!   previous; changed only by lightweight transactions, because numbering
//!   and activation are read-modify-writes that two gateway nodes may race.
//!   Deletion sets `live = false` and keeps `last_version`, so a re-upload
//!   continues the numbering.
//! - `plugin_versions ((tenant, name), version)`: metadata, written after
//!   the bytes, so a listed version always has its bytes.
//! - `plugin_components ((tenant, name, version), chunk)`: the bytes in
//!   1 MiB chunks, read one chunk per request to keep responses small.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::try_join_all;

use super::ScyllaStore;
use super::db::unavailable;
use crate::registry::{activated, rolled_back, validate_plugin};
use crate::{PluginRecord, PluginRegistry, PluginVersion, PluginVersionMeta, StoreError};

const CHUNK: usize = 1024 * 1024;
const CAS_ATTEMPTS: usize = 32;

/// A `plugins` row: tenant, name, live, active, previous.
type PluginRow = (String, String, Option<bool>, Option<i32>, Option<i32>);
/// A `plugin_versions` row: version, sha256, size, config, uploaded, chunks.
type VersionRow = (
    i32,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i32>,
);

fn version_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn cql_version(v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Invalid(format!("version {v} is out of range")))
}

fn meta(row: VersionRow) -> (PluginVersionMeta, i32) {
    let (version, sha256, size, config, uploaded, chunks) = row;
    let meta = PluginVersionMeta {
        version: version_of(version),
        sha256: sha256.unwrap_or_default(),
        size_bytes: u64::try_from(size.unwrap_or(0)).unwrap_or(0),
        config: config.unwrap_or_default(),
        uploaded_ms: u64::try_from(uploaded.unwrap_or(0)).unwrap_or(0),
    };
    (meta, chunks.unwrap_or(0))
}

impl ScyllaStore {
    async fn versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<(PluginVersionMeta, i32)>, StoreError> {
        let db = &self.inner.db;
        let rows: Vec<VersionRow> = db.rows(&db.st.versions_of, (tenant, name)).await?;
        Ok(rows.into_iter().map(meta).collect())
    }

    async fn record(&self, row: PluginRow) -> Result<Option<PluginRecord>, StoreError> {
        let (tenant, name, live, active, previous) = row;
        if live != Some(true) {
            return Ok(None);
        }
        let versions = self
            .versions(&tenant, &name)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        Ok(Some(PluginRecord {
            tenant: tenant.into(),
            name: name.into(),
            versions,
            active: active.map(version_of),
            previous: previous.map(version_of),
        }))
    }

    async fn records(&self, rows: Vec<PluginRow>) -> Result<Vec<PluginRecord>, StoreError> {
        let records = try_join_all(rows.into_iter().map(|row| self.record(row))).await?;
        Ok(records.into_iter().flatten().collect())
    }

    /// Applies `change` to the record with a compare-and-set on active and
    /// previous, retrying when another node changed them meanwhile.
    async fn swap_active<T>(
        &self,
        tenant: &str,
        name: &str,
        change: impl Fn(&mut PluginRecord) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = &self.inner.db;
        for _ in 0..CAS_ATTEMPTS {
            let mut record = self.plugin(tenant, name).await?.ok_or_else(|| {
                StoreError::Invalid(format!("tenant {tenant} has no plugin {name}"))
            })?;
            let (old_active, old_previous) = (record.active, record.previous);
            let out = change(&mut record)?;
            let cql = |v: Option<u32>| v.map(cql_version).transpose();
            let values = (
                cql(record.active)?,
                cql(record.previous)?,
                tenant,
                name,
                cql(old_active)?,
                cql(old_previous)?,
            );
            if db.lwt(&db.st.plugin_activate, values).await? {
                return Ok(out);
            }
        }
        Err(unavailable(
            "plugin activation raced with other changes; retry",
        ))
    }
}

#[async_trait]
impl PluginRegistry for ScyllaStore {
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
        let db = &self.inner.db;
        // Take the next number first: a failed upload wastes a number,
        // which is harmless, while two uploads can never share one.
        let mut version = None;
        for _ in 0..CAS_ATTEMPTS {
            let row: Option<(Option<i32>, Option<bool>, Option<i32>, Option<i32>)> =
                db.row(&db.st.plugin_get, (tenant, name)).await?;
            let applied = match row {
                None => db
                    .lwt(&db.st.plugin_create, (tenant, name))
                    .await?
                    .then_some(1),
                Some((last, ..)) => {
                    let last = last.unwrap_or(0);
                    let next = last.checked_add(1).ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "plugin {name} has used up its version numbers"
                        ))
                    })?;
                    db.lwt(&db.st.plugin_bump, (next, tenant, name, last))
                        .await?
                        .then_some(next)
                }
            };
            if applied.is_some() {
                version = applied;
                break;
            }
        }
        let version =
            version.ok_or_else(|| unavailable("plugin upload raced with others; retry"))?;
        let chunks: Vec<&[u8]> = component.chunks(CHUNK).collect();
        try_join_all(chunks.iter().enumerate().map(|(i, data)| {
            let chunk = i32::try_from(i).unwrap_or(i32::MAX);
            db.exec(&db.st.chunk_put, (tenant, name, version, chunk, *data))
        }))
        .await?;
        let size = i64::try_from(component.len()).unwrap_or(i64::MAX);
        let uploaded = i64::try_from(uploaded_ms).unwrap_or(i64::MAX);
        let count = i32::try_from(chunks.len()).unwrap_or(i32::MAX);
        let values = (tenant, name, version, sha256, size, config, uploaded, count);
        db.exec(&db.st.version_put, values).await?;
        Ok(PluginVersionMeta {
            version: version_of(version),
            sha256: sha256.to_owned(),
            size_bytes: component.len() as u64,
            config: config.to_owned(),
            uploaded_ms,
        })
    }

    async fn get_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<PluginVersion>, StoreError> {
        validate_plugin(tenant, name)?;
        if self.plugin(tenant, name).await?.is_none() {
            return Ok(None);
        }
        let found = self
            .versions(tenant, name)
            .await?
            .into_iter()
            .find(|(m, _)| m.version == version);
        let Some((meta, chunks)) = found else {
            return Ok(None);
        };
        let db = &self.inner.db;
        let v = cql_version(version)?;
        let parts = try_join_all((0..chunks).map(|chunk| async move {
            let row: Option<(Option<Vec<u8>>,)> =
                db.row(&db.st.chunk_get, (tenant, name, v, chunk)).await?;
            row.and_then(|(data,)| data)
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("chunk {chunk} of plugin {tenant}/{name} v{version} is missing"),
                })
        }))
        .await?;
        let mut component = BytesMut::with_capacity(usize::try_from(meta.size_bytes).unwrap_or(0));
        for part in parts {
            component.extend_from_slice(&part);
        }
        Ok(Some(PluginVersion {
            meta,
            component: component.freeze(),
        }))
    }

    async fn plugin(&self, tenant: &str, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        validate_plugin(tenant, name)?;
        let db = &self.inner.db;
        let row: Option<(Option<i32>, Option<bool>, Option<i32>, Option<i32>)> =
            db.row(&db.st.plugin_get, (tenant, name)).await?;
        let Some((_, live, active, previous)) = row else {
            return Ok(None);
        };
        self.record((tenant.to_owned(), name.to_owned(), live, active, previous))
            .await
    }

    async fn list_plugins(&self, tenant: &str) -> Result<Vec<PluginRecord>, StoreError> {
        validate_plugin(tenant, "x")?;
        let db = &self.inner.db;
        let rows: Vec<PluginRow> = db.rows(&db.st.plugins_of, (tenant,)).await?;
        self.records(rows).await
    }

    async fn activate(&self, tenant: &str, name: &str, version: u32) -> Result<(), StoreError> {
        validate_plugin(tenant, name)?;
        self.swap_active(tenant, name, |r| activated(r, version))
            .await
    }

    async fn rollback(&self, tenant: &str, name: &str) -> Result<u32, StoreError> {
        validate_plugin(tenant, name)?;
        self.swap_active(tenant, name, rolled_back).await
    }

    async fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        validate_plugin(tenant, name)?;
        let db = &self.inner.db;
        let versions = self.versions(tenant, name).await?;
        if !db.lwt(&db.st.plugin_delete, (tenant, name)).await? {
            return Ok(false);
        }
        // The record is gone (live = false) from here on; the rest frees space.
        try_join_all(versions.iter().map(|(m, _)| async move {
            let v = cql_version(m.version)?;
            db.exec(&db.st.chunks_delete, (tenant, name, v))
                .await
                .map_err(StoreError::from)
        }))
        .await?;
        db.exec(&db.st.versions_delete, (tenant, name)).await?;
        Ok(true)
    }

    async fn active_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        // A scan of the whole (small) plugins table, once at startup.
        let db = &self.inner.db;
        let rows: Vec<PluginRow> = db.rows_paged(&db.st.plugins_all, ()).await?;
        let active = rows
            .into_iter()
            .filter(|r| r.2 == Some(true) && r.3.is_some())
            .collect();
        self.records(active).await
    }
}
