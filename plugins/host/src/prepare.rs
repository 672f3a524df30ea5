//! Turning component bytes into a runnable plugin: header check, compile
//! (or load from the disk cache), world check, link, first instance and
//! manifest. Shared by upload, activation, rollback and startup loading.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Component;

use crate::bindings::PluginPre;
use crate::capabilities::config::PluginConfig;
use crate::capabilities::metrics::CustomCounters;
use crate::plugin::LoadedPlugin;
use crate::pool::{InstancePool, RecyclePolicy};
use crate::state::PluginEnv;
use crate::{FailurePolicy, HookSet, PluginHost, UploadError, validate};

/// A validated, instantiable plugin that has no version number yet.
pub(crate) struct Prepared {
    pool: InstancePool,
    hooks: HookSet,
    policy: FailurePolicy,
}

impl Prepared {
    pub(crate) fn into_loaded(self, name: Arc<str>, version: u32) -> LoadedPlugin {
        LoadedPlugin::ready(name, version, self.hooks, self.policy, self.pool)
    }
}

/// Parses a plugin config and the failure policy in it.
pub(crate) fn parse_config(json: &str) -> Result<(PluginConfig, FailurePolicy), UploadError> {
    let config = PluginConfig::parse(json).map_err(UploadError::InvalidConfig)?;
    let policy = FailurePolicy::from_config(&config.values).map_err(UploadError::InvalidConfig)?;
    Ok((config, policy))
}

impl PluginHost {
    /// Validates and compiles `bytes` (hash `sha256`) and creates its first
    /// instance, which answers the manifest and stays pooled.
    pub(crate) async fn prepare(
        &self,
        tenant: &str,
        name: &str,
        sha256: &str,
        bytes: Bytes,
        config_json: &str,
    ) -> Result<Prepared, UploadError> {
        let (config, policy) = parse_config(config_json)?;
        validate::check_header(&bytes)?;
        let component = self.compile(sha256, bytes).await?;

        let inner = &self.inner;
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| UploadError::Incompatible(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| UploadError::Incompatible(format!("{e:#}")))?;

        let (tenant, name): (Arc<str>, Arc<str>) = (Arc::from(tenant), Arc::from(name));
        let counters = CustomCounters::new(
            inner.metrics.custom.clone(),
            Arc::clone(&tenant),
            Arc::clone(&name),
        );
        let env = PluginEnv::new(
            Arc::clone(&tenant),
            Arc::clone(&name),
            // Upcast: the kv capability needs only the key-value half.
            inner.services.store.clone(),
            Arc::clone(&inner.services.publisher),
            config,
            counters,
            inner.config.limits_for(&tenant),
            inner.config.epoch_tick,
        );
        let policy_recycle = RecyclePolicy {
            max_idle: inner.config.max_idle_per_plugin,
            after_calls: inner.config.recycle_after_calls,
            memory_mark: inner.config.recycle_memory_mark,
        };
        let metrics = inner.metrics.plugin(&tenant, &name);
        let pool = InstancePool::new(pre, Arc::new(env), policy_recycle, metrics);
        let hooks = LoadedPlugin::read_manifest(&pool)
            .await
            .map_err(UploadError::Manifest)?;
        Ok(Prepared {
            pool,
            hooks,
            policy,
        })
    }

    /// Compiles on the blocking pool (it takes tens to hundreds of
    /// milliseconds of CPU), through the disk cache.
    async fn compile(&self, sha256: &str, bytes: Bytes) -> Result<Component, UploadError> {
        let engine = self.inner.engine.clone();
        let cache = Arc::clone(&self.inner.cache);
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || {
            cache.load_or_compile(
                &engine,
                &sha256,
                &bytes,
                |c| validate::check_world(&engine, c),
                |e| UploadError::Compile(format!("{e:#}")),
            )
        })
        .await
        .map_err(|e| UploadError::Internal(format!("compile task failed: {e}")))?
    }
}
