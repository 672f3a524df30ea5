//! [`PluginHost`]: construction and the shared state behind it. The hook
//! chains are in `chain.rs`, the lifecycle operations in `lifecycle.rs`.

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::cache::ArtifactCache;
use crate::engine::{self, EpochTicker};
use crate::metrics::HostMetrics;
use crate::state::PluginState;
use crate::tenant::Tenants;
use crate::{HookSet, HostConfig, HostError, HostServices};

/// Runs tenants' plugins. Cheap to clone (one `Arc`); create one per
/// process and share it. Dropping the last clone stops the epoch thread.
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    /// The WASI subset and the capabilities; shared by every plugin.
    pub(crate) linker: Linker<PluginState>,
    pub(crate) cache: Arc<ArtifactCache>,
    pub(crate) config: HostConfig,
    pub(crate) services: HostServices,
    pub(crate) metrics: HostMetrics,
    pub(crate) tenants: Tenants,
    /// Serialises lifecycle operations, so the registry's activation state
    /// and the in-memory plugin set change together.
    pub(crate) admin: tokio::sync::Mutex<()>,
    /// Declared last: dropped after everything that may still run wasm.
    _ticker: EpochTicker,
}

impl PluginHost {
    /// Creates the engine (reserving the instance pool's address space),
    /// starts the epoch thread, opens the artifact cache and registers the
    /// metrics. Loads no plugin: call [`load_active`](Self::load_active).
    pub fn new(config: HostConfig, services: HostServices) -> Result<PluginHost, HostError> {
        let engine = engine::build(&config)?;
        let linker = crate::capabilities::linker(&engine)
            .map_err(|e| HostError::Engine(format!("cannot link host capabilities: {e:#}")))?;
        let metrics = HostMetrics::register(&services.metrics)?;
        let cache = ArtifactCache::open(
            &config.cache_dir,
            &engine,
            metrics.cache_hits.clone(),
            metrics.cache_misses.clone(),
        )?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        Ok(PluginHost {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache: Arc::new(cache),
                config,
                services,
                metrics,
                tenants: Tenants::default(),
                admin: tokio::sync::Mutex::new(()),
                _ticker: ticker,
            }),
        })
    }

    /// The hooks any active plugin of `tenant` implements. Cheap (one
    /// lock-free load): check it before building a hook call's arguments.
    pub fn hooks(&self, tenant: &str) -> HookSet {
        self.inner.tenants.hooks(tenant)
    }

    /// Compiled components loaded from the disk cache since start.
    pub fn cache_hits(&self) -> u64 {
        self.inner.metrics.cache_hits.get()
    }

    /// Components compiled (cache misses) since start.
    pub fn compilations(&self) -> u64 {
        self.inner.metrics.cache_misses.get()
    }

    /// The active version of plugin `name` of `tenant` in this process.
    pub fn active_version(&self, tenant: &str, name: &str) -> Option<u32> {
        self.inner.tenants.active(tenant, name).map(|p| p.version)
    }
}
