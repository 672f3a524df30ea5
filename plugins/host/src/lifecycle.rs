//! Upload, list, activate, roll back, delete, and loading at startup. The
//! registry in the gateway's store is the source of truth; the in-memory
//! plugin set follows it, changed under the admin lock so both move
//! together. Each swap is atomic for callers (see `tenant.rs`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use quiver_storage::{PluginRecord, PluginVersionMeta};

use crate::cache::sha256_hex;
use crate::plugin::LoadedPlugin;
use crate::prepare::parse_config;
use crate::{HostError, PluginHost, UploadError};

/// Longest plugin name, as the registry allows.
const MAX_NAME_BYTES: usize = 64;

/// What [`PluginHost::load_active`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// Plugins now active and runnable.
    pub loaded: usize,
    /// Active plugins that could not be loaded: `(tenant, name, version,
    /// error)`. They stay installed in a failed state, so their failure
    /// policy applies (fail-closed ones block) until re-uploaded.
    pub failed: Vec<(String, String, u32, String)>,
}

fn check_names(tenant: &str, name: &str) -> Result<(), UploadError> {
    if tenant.is_empty() || tenant.len() > 255 {
        return Err(UploadError::InvalidName(
            "tenant must be 1 to 255 bytes".into(),
        ));
    }
    let ok = (1..=MAX_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(UploadError::InvalidName(format!(
            "plugin name `{name}` must be 1 to {MAX_NAME_BYTES} characters of [A-Za-z0-9._-] (prefix with 10-, 20- to order plugins)"
        )));
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl PluginHost {
    /// Validates, compiles, stores and activates a new version of plugin
    /// `name` of `tenant`. The swap is atomic: calls in flight finish on
    /// the old version, the next call runs the new one. `config_json` must
    /// be a JSON object (default `{}`); it is given to the plugin and may
    /// set `failure_policy`.
    pub async fn upload(
        &self,
        tenant: &str,
        name: &str,
        component: Bytes,
        config_json: Option<&str>,
    ) -> Result<PluginVersionMeta, UploadError> {
        let max = self.inner.config.max_component_bytes;
        if component.len() > max {
            return Err(UploadError::TooLarge {
                size: component.len(),
                max,
            });
        }
        check_names(tenant, name)?;
        let config = config_json.unwrap_or("{}");
        let sha256 = sha256_hex(&component);
        let prepared = self
            .prepare(tenant, name, &sha256, component.clone(), config)
            .await?;

        let store = &self.inner.services.store;
        let _admin = self.inner.admin.lock().await;
        let meta = store
            .put_version(tenant, name, component, &sha256, config, now_ms())
            .await?;
        store.activate(tenant, name, meta.version).await?;
        let loaded = prepared.into_loaded(Arc::from(name), meta.version);
        self.inner.tenants.put(tenant, Arc::new(loaded));
        tracing::info!(tenant, plugin = name, version = meta.version, sha256 = %meta.sha256, "plugin uploaded and active");
        Ok(meta)
    }

    /// The tenant's plugins with their versions, hashes and active version.
    pub async fn list(&self, tenant: &str) -> Result<Vec<PluginRecord>, HostError> {
        Ok(self.inner.services.store.list_plugins(tenant).await?)
    }

    /// Makes a stored version active (after loading it, so a version that
    /// no longer loads is refused and the current one stays).
    pub async fn activate(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<(), UploadError> {
        let _admin = self.inner.admin.lock().await;
        let loaded = self.load_version(tenant, name, version).await?;
        self.inner
            .services
            .store
            .activate(tenant, name, version)
            .await?;
        self.inner.tenants.put(tenant, loaded);
        tracing::info!(tenant, plugin = name, version, "plugin version activated");
        Ok(())
    }

    /// Re-activates the version active before the current one; returns it.
    pub async fn rollback(&self, tenant: &str, name: &str) -> Result<u32, UploadError> {
        let _admin = self.inner.admin.lock().await;
        let record = self.record(tenant, name).await?;
        let previous = record
            .previous
            .ok_or_else(|| UploadError::NoPreviousVersion {
                name: name.to_owned(),
            })?;
        let mut loaded = self.load_version(tenant, name, previous).await?;
        let version = self.inner.services.store.rollback(tenant, name).await?;
        if version != previous {
            // Another gateway node changed the plugin meanwhile; run what
            // the registry now says is active.
            loaded = self.load_version(tenant, name, version).await?;
        }
        self.inner.tenants.put(tenant, loaded);
        tracing::info!(tenant, plugin = name, version, "plugin rolled back");
        Ok(version)
    }

    /// Removes the plugin and every version of it; returns whether it
    /// existed. Calls in flight finish; the next call no longer runs it.
    pub async fn delete(&self, tenant: &str, name: &str) -> Result<bool, HostError> {
        let _admin = self.inner.admin.lock().await;
        let existed = self
            .inner
            .services
            .store
            .delete_plugin(tenant, name)
            .await?;
        if let Some(old) = self.inner.tenants.remove(tenant, name) {
            if let Some(pool) = old.instance_pool() {
                pool.env().counters.remove_all();
            }
            self.inner.metrics.remove_plugin(tenant, name);
        }
        Ok(existed)
    }

    /// Loads every active plugin from the registry (at startup). Compiled
    /// components come from the disk cache when present.
    pub async fn load_active(&self) -> Result<LoadReport, HostError> {
        let records = self.inner.services.store.active_plugins().await?;
        let _admin = self.inner.admin.lock().await;
        let mut report = LoadReport::default();
        for record in records {
            let Some(version) = record.active else {
                continue;
            };
            match self
                .load_version(&record.tenant, &record.name, version)
                .await
            {
                Ok(loaded) => {
                    self.inner.tenants.put(&record.tenant, loaded);
                    report.loaded += 1;
                }
                Err(e) => {
                    tracing::error!(tenant = %record.tenant, plugin = %record.name, version,
                        "cannot load active plugin; it fails every call until re-uploaded: {e}");
                    let policy = record
                        .versions
                        .iter()
                        .find(|v| v.version == version)
                        .and_then(|v| parse_config(&v.config).ok())
                        .map(|(_, p)| p)
                        .unwrap_or_default();
                    let broken = LoadedPlugin::broken(
                        Arc::clone(&record.name),
                        version,
                        policy,
                        e.to_string(),
                    );
                    self.inner.tenants.put(&record.tenant, Arc::new(broken));
                    report.failed.push((
                        record.tenant.to_string(),
                        record.name.to_string(),
                        version,
                        e.to_string(),
                    ));
                }
            }
        }
        Ok(report)
    }

    /// Brings `tenant`'s running plugins in line with the registry: loads
    /// versions activated elsewhere (another gateway node sharing the
    /// store), drops plugins deleted elsewhere. Returns how many plugins
    /// changed. Cheap when nothing changed (one registry read).
    pub async fn reload(&self, tenant: &str) -> Result<usize, UploadError> {
        let _admin = self.inner.admin.lock().await;
        let records = self.inner.services.store.list_plugins(tenant).await?;
        let mut changed = 0;
        for record in &records {
            let Some(version) = record.active else {
                continue;
            };
            if self.active_version(tenant, &record.name) == Some(version) {
                continue;
            }
            let loaded = self.load_version(tenant, &record.name, version).await?;
            self.inner.tenants.put(tenant, loaded);
            changed += 1;
        }
        let running = self.inner.tenants.get(tenant);
        for plugin in running.iter().flat_map(|t| t.plugins.iter()) {
            let active = records
                .iter()
                .any(|r| r.name == plugin.name && r.active.is_some());
            if !active {
                self.inner.tenants.remove(tenant, &plugin.name);
                changed += 1;
            }
        }
        Ok(changed)
    }

    async fn record(&self, tenant: &str, name: &str) -> Result<PluginRecord, UploadError> {
        self.inner
            .services
            .store
            .plugin(tenant, name)
            .await?
            .ok_or_else(|| UploadError::UnknownPlugin {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
            })
    }

    /// Reads a stored version and prepares it. Checks the stored bytes
    /// against their recorded hash, so a damaged store cannot run code
    /// nobody uploaded.
    async fn load_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Arc<LoadedPlugin>, UploadError> {
        let stored = self
            .inner
            .services
            .store
            .get_version(tenant, name, version)
            .await?;
        let Some(stored) = stored else {
            // Distinguish "no such plugin" from "no such version".
            self.record(tenant, name).await?;
            return Err(UploadError::UnknownVersion {
                name: name.to_owned(),
                version,
            });
        };
        let sha256 = sha256_hex(&stored.component);
        if sha256 != stored.meta.sha256 {
            return Err(UploadError::Internal(format!(
                "stored component of {name} v{version} does not match its SHA-256; re-upload it"
            )));
        }
        let prepared = self
            .prepare(tenant, name, &sha256, stored.component, &stored.meta.config)
            .await?;
        Ok(Arc::new(prepared.into_loaded(Arc::from(name), version)))
    }
}
