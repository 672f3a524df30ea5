//! The data of one plugin instance's store: the capability contexts, the
//! empty WASI context and the limits. Built once per instance and reused
//! across its calls.

use std::sync::Arc;

use quiver_storage::KvScope;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::ChannelPublisher;
use crate::capabilities::channels::{ChannelsCtx, ChannelsHost, ChannelsView};
use crate::capabilities::config::{ConfigCtx, ConfigView, PluginConfig};
use crate::capabilities::kv::{KvCtx, KvHost, KvView};
use crate::capabilities::log::{LogCtx, LogView};
use crate::capabilities::metrics::{CustomCounters, MetricsCtx, MetricsView};
use crate::capabilities::wasi::{StderrTail, empty_ctx};
use crate::config::CallLimits;
use crate::limits::{CpuMeter, HasCpuMeter, MemoryLimiter};

/// What every instance of one plugin version shares.
#[derive(Debug)]
pub(crate) struct PluginEnv {
    pub(crate) kv: KvCtx,
    pub(crate) channels: ChannelsCtx,
    pub(crate) config: ConfigCtx,
    pub(crate) counters: MetricsCtx,
    pub(crate) tenant: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) limits: CallLimits,
    pub(crate) epoch_tick: std::time::Duration,
}

impl PluginEnv {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        tenant: Arc<str>,
        name: Arc<str>,
        store: Arc<dyn quiver_storage::KeyValueStore>,
        publisher: Arc<dyn ChannelPublisher>,
        config: PluginConfig,
        counters: CustomCounters,
        limits: CallLimits,
        epoch_tick: std::time::Duration,
    ) -> Self {
        Self {
            kv: KvCtx {
                store,
                scope: KvScope::new(Arc::clone(&tenant), Arc::clone(&name)),
            },
            channels: ChannelsCtx {
                publisher,
                tenant: Arc::clone(&tenant),
            },
            config: Arc::new(config),
            counters: Arc::new(counters),
            tenant,
            name,
            limits,
            epoch_tick,
        }
    }
}

/// The `T` of `Store<T>` for plugins.
pub(crate) struct PluginState {
    env: Arc<PluginEnv>,
    wasi: WasiCtx,
    table: ResourceTable,
    log: LogCtx,
    pub(crate) stderr: StderrTail,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu: CpuMeter,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("tenant", &self.env.tenant)
            .field("plugin", &self.env.name)
            .finish_non_exhaustive()
    }
}

impl PluginState {
    pub(crate) fn new(env: Arc<PluginEnv>) -> Self {
        let stderr = StderrTail::default();
        Self {
            wasi: empty_ctx(stderr.clone()),
            table: ResourceTable::new(),
            log: LogCtx::new(Arc::clone(&env.tenant), Arc::clone(&env.name)),
            stderr,
            memory: MemoryLimiter::new(env.limits.memory_limit_bytes),
            cpu: CpuMeter::new(env.limits.cpu_budget, env.epoch_tick),
            env,
        }
    }

    /// The limits of this plugin's tenant.
    pub(crate) fn env_limits(&self) -> CallLimits {
        self.env.limits
    }

    /// Resets per-call state; returns the epoch deadline to arm.
    pub(crate) fn begin_call(&mut self, now: std::time::Instant) -> u64 {
        self.log.lines = 0;
        self.memory.refused = false;
        self.stderr.clear();
        self.cpu.begin(now)
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl KvView for PluginState {
    fn kv(&mut self) -> KvHost<'_> {
        KvHost {
            ctx: &self.env.kv,
            meter: &mut self.cpu,
        }
    }
}

impl ChannelsView for PluginState {
    fn channels(&mut self) -> ChannelsHost<'_> {
        ChannelsHost {
            ctx: &self.env.channels,
            meter: &mut self.cpu,
        }
    }
}

impl LogView for PluginState {
    fn log(&mut self) -> &mut LogCtx {
        &mut self.log
    }
}

impl MetricsView for PluginState {
    fn metrics(&mut self) -> &MetricsCtx {
        &self.env.counters
    }
}

impl ConfigView for PluginState {
    fn config(&mut self) -> &ConfigCtx {
        &self.env.config
    }
}

impl HasCpuMeter for PluginState {
    fn cpu_meter(&mut self) -> &mut CpuMeter {
        &mut self.cpu
    }
}
