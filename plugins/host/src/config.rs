//! Typed configuration of the plugin host. Build it with
//! [`HostConfig::new`] and adjust it with the chainable setters; every
//! field's default is on the field.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Limits of the plugin host. The operator sets them; tenants cannot (a
/// plugin's own config only chooses its failure policy).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostConfig {
    /// Where compiled components are cached, keyed by the component's
    /// SHA-256 and the engine's compatibility hash, so a restart does not
    /// recompile. Created if missing. No default.
    pub cache_dir: PathBuf,
    /// Largest component accepted by `upload`. Default: 10 MiB.
    pub max_component_bytes: usize,
    /// Time one call may spend running plugin code (waits for storage do
    /// not count). Default: 10 ms.
    pub default_cpu_budget: Duration,
    /// Time one call may take in total, waits included. Default: 100 ms.
    pub wall_deadline: Duration,
    /// Linear memory one instance may grow to. Default: 16 MiB.
    pub memory_limit_bytes: usize,
    /// An instance is recycled (dropped, replaced by a fresh one) after
    /// this many calls, so slow leaks in a plugin stay bounded.
    /// Default: 10 000.
    pub recycle_after_calls: u64,
    /// An instance whose memory grew past this is recycled after its call.
    /// Default: 8 MiB.
    pub recycle_memory_mark: usize,
    /// Instances alive at once in the whole process (the pooling
    /// allocator reserves this many slots at start). Default: 1000.
    pub max_instances: u32,
    /// Idle instances kept per plugin version for reuse; more concurrent
    /// calls create more instances, which are dropped after their call.
    /// Default: 4.
    pub max_idle_per_plugin: usize,
    /// Granularity of the CPU budget: the epoch ticker thread's period.
    /// Default: 1 ms.
    pub epoch_tick: Duration,
    /// Per-tenant overrides of the limits above. Default: none.
    pub per_tenant: HashMap<String, TenantPluginLimits>,
}

/// Limits that differ for one tenant; `None` keeps the host's default.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TenantPluginLimits {
    /// Replaces [`HostConfig::default_cpu_budget`].
    pub cpu_budget: Option<Duration>,
    /// Replaces [`HostConfig::wall_deadline`].
    pub wall_deadline: Option<Duration>,
    /// Replaces [`HostConfig::memory_limit_bytes`].
    pub memory_limit_bytes: Option<usize>,
}

impl TenantPluginLimits {
    /// Overrides of nothing; set fields with the setters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`cpu_budget`](Self::cpu_budget).
    pub fn cpu_budget(mut self, budget: Duration) -> Self {
        self.cpu_budget = Some(budget);
        self
    }

    /// Sets [`wall_deadline`](Self::wall_deadline).
    pub fn wall_deadline(mut self, deadline: Duration) -> Self {
        self.wall_deadline = Some(deadline);
        self
    }

    /// Sets [`memory_limit_bytes`](Self::memory_limit_bytes).
    pub fn memory_limit_bytes(mut self, bytes: usize) -> Self {
        self.memory_limit_bytes = Some(bytes);
        self
    }
}

/// The limits one call runs under, resolved for its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallLimits {
    pub(crate) cpu_budget: Duration,
    pub(crate) wall_deadline: Duration,
    pub(crate) memory_limit_bytes: usize,
}

impl HostConfig {
    /// Every default, caching compiled components under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_component_bytes: 10 * 1024 * 1024,
            default_cpu_budget: Duration::from_millis(10),
            wall_deadline: Duration::from_millis(100),
            memory_limit_bytes: 16 * 1024 * 1024,
            recycle_after_calls: 10_000,
            recycle_memory_mark: 8 * 1024 * 1024,
            max_instances: 1000,
            max_idle_per_plugin: 4,
            epoch_tick: Duration::from_millis(1),
            per_tenant: HashMap::new(),
        }
    }

    /// Sets [`max_component_bytes`](Self::max_component_bytes).
    pub fn max_component_bytes(mut self, bytes: usize) -> Self {
        self.max_component_bytes = bytes;
        self
    }

    /// Sets [`default_cpu_budget`](Self::default_cpu_budget).
    pub fn default_cpu_budget(mut self, budget: Duration) -> Self {
        self.default_cpu_budget = budget;
        self
    }

    /// Sets [`wall_deadline`](Self::wall_deadline).
    pub fn wall_deadline(mut self, deadline: Duration) -> Self {
        self.wall_deadline = deadline;
        self
    }

    /// Sets [`memory_limit_bytes`](Self::memory_limit_bytes).
    pub fn memory_limit_bytes(mut self, bytes: usize) -> Self {
        self.memory_limit_bytes = bytes;
        self
    }

    /// Sets [`recycle_after_calls`](Self::recycle_after_calls).
    pub fn recycle_after_calls(mut self, calls: u64) -> Self {
        self.recycle_after_calls = calls;
        self
    }

    /// Sets [`recycle_memory_mark`](Self::recycle_memory_mark).
    pub fn recycle_memory_mark(mut self, bytes: usize) -> Self {
        self.recycle_memory_mark = bytes;
        self
    }

    /// Sets [`max_instances`](Self::max_instances).
    pub fn max_instances(mut self, instances: u32) -> Self {
        self.max_instances = instances;
        self
    }

    /// Sets [`max_idle_per_plugin`](Self::max_idle_per_plugin).
    pub fn max_idle_per_plugin(mut self, idle: usize) -> Self {
        self.max_idle_per_plugin = idle;
        self
    }

    /// Sets [`epoch_tick`](Self::epoch_tick).
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick;
        self
    }

    /// Adds (or replaces) the overrides of one tenant.
    pub fn tenant_limits(mut self, tenant: impl Into<String>, limits: TenantPluginLimits) -> Self {
        self.per_tenant.insert(tenant.into(), limits);
        self
    }

    /// The limits of `tenant`'s calls.
    pub(crate) fn limits_for(&self, tenant: &str) -> CallLimits {
        let o = self.per_tenant.get(tenant);
        CallLimits {
            cpu_budget: o
                .and_then(|o| o.cpu_budget)
                .unwrap_or(self.default_cpu_budget),
            wall_deadline: o
                .and_then(|o| o.wall_deadline)
                .unwrap_or(self.wall_deadline),
            memory_limit_bytes: o
                .and_then(|o| o.memory_limit_bytes)
                .unwrap_or(self.memory_limit_bytes),
        }
    }

    /// The largest memory any tenant may use: the size of the pooling
    /// allocator's memory slots.
    pub(crate) fn largest_memory_limit(&self) -> usize {
        self.per_tenant
            .values()
            .filter_map(|o| o.memory_limit_bytes)
            .fold(self.memory_limit_bytes, usize::max)
    }
}
