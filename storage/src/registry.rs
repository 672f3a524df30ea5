//! Uploaded plugin components, their versions, and which one is active.
//! Kept in the store so a restart (and, with ScyllaDB, every gateway node)
//! loads the same plugins.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::StoreError;

/// Longest plugin name (and key-value namespace), in bytes.
pub const MAX_PLUGIN_NAME_BYTES: usize = 64;

/// One uploaded version of a plugin, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersionMeta {
    /// 1 for the first upload of a name, then +1 per upload.
    pub version: u32,
    /// Hex SHA-256 of the component bytes.
    pub sha256: String,
    pub size_bytes: u64,
    /// The plugin's config as uploaded (JSON text).
    pub config: String,
    pub uploaded_ms: u64,
}

/// One uploaded version with its component bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersion {
    pub meta: PluginVersionMeta,
    pub component: Bytes,
}

/// A plugin of a tenant: every stored version and the active one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRecord {
    pub tenant: Arc<str>,
    pub name: Arc<str>,
    /// Oldest first.
    pub versions: Vec<PluginVersionMeta>,
    pub active: Option<u32>,
    /// The version active before the current one, for rollback.
    pub previous: Option<u32>,
}

/// Plugin components and their activation state.
///
/// - Names are 1 to 64 bytes; tenants as everywhere.
/// - `put_version` assigns the next version number of that name (never
///   reused, even after `delete`), stores the bytes and metadata, and does
///   not activate it.
/// - `activate` makes a stored version active and remembers the one it
///   replaces as `previous`; activating an unknown version is
///   [`StoreError::Invalid`].
/// - Every method is scoped to one tenant; `active_plugins` lists every
///   tenant's, for loading at startup.
#[async_trait]
pub trait PluginRegistry: Send + Sync + 'static {
    async fn put_version(
        &self,
        tenant: &str,
        name: &str,
        component: Bytes,
        sha256: &str,
        config: &str,
        uploaded_ms: u64,
    ) -> Result<PluginVersionMeta, StoreError>;

    async fn get_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<PluginVersion>, StoreError>;

    async fn plugin(&self, tenant: &str, name: &str) -> Result<Option<PluginRecord>, StoreError>;

    async fn list_plugins(&self, tenant: &str) -> Result<Vec<PluginRecord>, StoreError>;

    async fn activate(&self, tenant: &str, name: &str, version: u32) -> Result<(), StoreError>;

    /// Re-activates `previous` (and makes the current one `previous`).
    /// Fails with [`StoreError::Invalid`] when there is no previous version.
    async fn rollback(&self, tenant: &str, name: &str) -> Result<u32, StoreError>;

    /// Removes the plugin and all its versions; returns whether it existed.
    async fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool, StoreError>;

    /// Every plugin with an active version, across all tenants.
    async fn active_plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;
}

/// Checks that `name` is 1 to `max` bytes; `what` names it in the error.
pub(crate) fn validate_name(what: &str, name: &str, max: usize) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    if name.len() > max {
        return Err(StoreError::Invalid(format!(
            "{what} is {} bytes; the limit is {max}",
            name.len()
        )));
    }
    Ok(())
}

/// Checks a tenant and plugin name against the limits every backend enforces.
pub(crate) fn validate_plugin(tenant: &str, name: &str) -> Result<(), StoreError> {
    validate_name("tenant name", tenant, 255)?;
    validate_name("plugin name", name, MAX_PLUGIN_NAME_BYTES)
}

/// The record after activating `version`: the active one becomes
/// `previous`, unless it is `version` itself (re-activating is a no-op).
pub(crate) fn activated(record: &mut PluginRecord, version: u32) -> Result<(), StoreError> {
    if !record.versions.iter().any(|v| v.version == version) {
        return Err(StoreError::Invalid(format!(
            "plugin {} has no version {version}",
            record.name
        )));
    }
    if record.active != Some(version) {
        record.previous = record.active;
        record.active = Some(version);
    }
    Ok(())
}

/// The record after a rollback, and the version it re-activated.
pub(crate) fn rolled_back(record: &mut PluginRecord) -> Result<u32, StoreError> {
    let Some(previous) = record.previous else {
        return Err(StoreError::Invalid(format!(
            "plugin {} has no previous version to roll back to",
            record.name
        )));
    };
    record.previous = record.active;
    record.active = Some(previous);
    Ok(previous)
}
