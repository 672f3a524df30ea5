//! `quiver:plugin/metrics`: counters a plugin defines, exported as
//! `quiver_plugin_custom_total{tenant, plugin, name}`. Names are checked
//! and capped per plugin so a plugin cannot blow up label cardinality.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{IntCounter, IntCounterVec};
use wasmtime::component::{HasData, Linker};

use crate::bindings::quiver::plugin::metrics::{self, Host};

/// Distinct counter names one plugin may use.
pub(crate) const MAX_CUSTOM_COUNTERS: usize = 32;

/// A plugin version's custom counters, shared by all its instances. The
/// series themselves live in the registry's vector, keyed by tenant, plugin
/// and name, so their values carry over a version swap.
#[derive(Debug)]
pub(crate) struct CustomCounters {
    vec: IntCounterVec,
    tenant: Arc<str>,
    plugin: Arc<str>,
    counters: Mutex<HashMap<String, IntCounter>>,
}

impl CustomCounters {
    pub(crate) fn new(vec: IntCounterVec, tenant: Arc<str>, plugin: Arc<str>) -> Self {
        Self {
            vec,
            tenant,
            plugin,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn valid(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    fn add(&self, name: &str, value: u64) {
        if !Self::valid(name) {
            tracing::warn!(tenant = %self.tenant, plugin = %self.plugin, name,
                "plugin counter name must be 1-64 chars of [a-z0-9_]; dropped");
            return;
        }
        // A poisoned lock only means another call panicked mid-insert;
        // the map is still usable.
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get(name) {
            c.inc_by(value);
            return;
        }
        if counters.len() >= MAX_CUSTOM_COUNTERS {
            tracing::warn!(tenant = %self.tenant, plugin = %self.plugin, name,
                "plugin uses more than {MAX_CUSTOM_COUNTERS} counter names; dropped");
            return;
        }
        let c = self
            .vec
            .with_label_values(&[&*self.tenant, &*self.plugin, name]);
        c.inc_by(value);
        counters.insert(name.to_owned(), c);
    }

    /// Removes this plugin's series (when the plugin is deleted).
    pub(crate) fn remove_all(&self) {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for name in counters.keys() {
            let _ = self
                .vec
                .remove_label_values(&[&*self.tenant, &*self.plugin, name]);
        }
    }
}

pub(crate) type MetricsCtx = Arc<CustomCounters>;

pub(crate) trait MetricsView: Send {
    fn metrics(&mut self) -> &MetricsCtx;
}

struct HasMetrics;

impl HasData for HasMetrics {
    type Data<'a> = &'a CustomCounters;
}

pub(crate) fn add_to_linker<T: MetricsView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    metrics::add_to_linker::<T, HasMetrics>(linker, |t| t.metrics().as_ref())
}

impl Host for &CustomCounters {
    async fn counter_add(&mut self, name: String, value: u64) {
        self.add(&name, value);
    }
}
