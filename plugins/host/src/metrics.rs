//! Plugin metrics, registered into the registry the gateway passes in.
//! Labels are bounded: tenant, plugin name, hook, error kind; never a
//! channel or a user.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use crate::{CallError, Hook};

/// Call durations from 1 µs (a reused instance's cheap hook) to 100 ms
/// (the default wall-clock deadline).
const CALL_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
];

/// Every plugin metric family of one host.
#[derive(Clone, Debug)]
pub(crate) struct HostMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    instantiations: IntCounterVec,
    pub(crate) custom: IntCounterVec,
    /// Compiled components loaded from the disk cache / compiled.
    pub(crate) cache_hits: IntCounter,
    pub(crate) cache_misses: IntCounter,
}

impl HostMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new("quiver_plugin_calls_total", "Plugin hook calls"),
            &["tenant", "plugin", "hook"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "quiver_plugin_errors_total",
                "Failed plugin calls by kind (trap, timeout, deadline, memory, ...)",
            ),
            &["tenant", "plugin", "kind"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "quiver_plugin_call_duration_seconds",
                "Duration of one plugin hook call, instance checkout included",
            )
            .buckets(CALL_BUCKETS.to_vec()),
            &["tenant", "plugin", "hook"],
        )?;
        let instantiations = IntCounterVec::new(
            Opts::new(
                "quiver_plugin_instantiations_total",
                "Fresh plugin instances created (first use, recycling, concurrency)",
            ),
            &["tenant", "plugin"],
        )?;
        let custom = IntCounterVec::new(
            Opts::new("quiver_plugin_custom_total", "Counters defined by plugins"),
            &["tenant", "plugin", "name"],
        )?;
        let cache = IntCounterVec::new(
            Opts::new(
                "quiver_plugin_artifact_cache_total",
                "Compiled-component cache lookups: hit (loaded from disk) or miss (compiled)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(instantiations.clone()))?;
        registry.register(Box::new(custom.clone()))?;
        registry.register(Box::new(cache.clone()))?;
        Ok(Self {
            calls,
            errors,
            duration,
            instantiations,
            custom,
            cache_hits: cache.with_label_values(&["hit"]),
            cache_misses: cache.with_label_values(&["miss"]),
        })
    }

    /// Resolves one plugin's series once, so a call only touches atomics.
    pub(crate) fn plugin(&self, tenant: &str, plugin: &str) -> PluginMetrics {
        let per_hook = |vec: &IntCounterVec| {
            Hook::ALL.map(|h| vec.with_label_values(&[tenant, plugin, h.name()]))
        };
        PluginMetrics {
            calls: per_hook(&self.calls),
            duration: Hook::ALL
                .map(|h| self.duration.with_label_values(&[tenant, plugin, h.name()])),
            errors: CallError::KINDS.map(|k| self.errors.with_label_values(&[tenant, plugin, k])),
            instantiations: self.instantiations.with_label_values(&[tenant, plugin]),
        }
    }

    /// Drops a deleted plugin's series.
    pub(crate) fn remove_plugin(&self, tenant: &str, plugin: &str) {
        for h in Hook::ALL {
            let _ = self.calls.remove_label_values(&[tenant, plugin, h.name()]);
            let _ = self
                .duration
                .remove_label_values(&[tenant, plugin, h.name()]);
        }
        for k in CallError::KINDS {
            let _ = self.errors.remove_label_values(&[tenant, plugin, k]);
        }
        let _ = self.instantiations.remove_label_values(&[tenant, plugin]);
    }
}

/// One plugin's resolved series.
#[derive(Clone, Debug)]
pub(crate) struct PluginMetrics {
    calls: [IntCounter; 4],
    duration: [Histogram; 4],
    errors: [IntCounter; 7],
    pub(crate) instantiations: IntCounter,
}

impl PluginMetrics {
    pub(crate) fn observe(&self, hook: Hook, seconds: f64, error: Option<&CallError>) {
        self.calls[hook.index()].inc();
        self.duration[hook.index()].observe(seconds);
        if let Some(e) = error {
            self.error(e);
        }
    }

    pub(crate) fn error(&self, error: &CallError) {
        if let Some(i) = CallError::KINDS.iter().position(|k| *k == error.kind()) {
            self.errors[i].inc();
        }
    }
}
