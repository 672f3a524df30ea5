//! The active plugins of every tenant, swapped atomically. Readers (every
//! hook call) take a snapshot with one lock-free load; writers (uploads,
//! activations) build a new map and swap it in. A call that took the old
//! snapshot finishes on the old version; the next call sees the new one.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::HookSet;
use crate::plugin::LoadedPlugin;

/// One tenant's active plugins, in name order (the order they run in).
#[derive(Debug, Default)]
pub(crate) struct TenantPlugins {
    pub(crate) plugins: Vec<Arc<LoadedPlugin>>,
    /// Union of the plugins' hooks.
    pub(crate) hooks: HookSet,
}

impl TenantPlugins {
    fn new(mut plugins: Vec<Arc<LoadedPlugin>>) -> Self {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let hooks = plugins.iter().fold(HookSet::EMPTY, |h, p| h.union(p.hooks));
        Self { plugins, hooks }
    }
}

type Map = HashMap<Arc<str>, Arc<TenantPlugins>>;

#[derive(Debug, Default)]
pub(crate) struct Tenants {
    map: ArcSwap<Map>,
}

impl Tenants {
    /// The tenant's active plugins now.
    pub(crate) fn get(&self, tenant: &str) -> Option<Arc<TenantPlugins>> {
        self.map.load().get(tenant).cloned()
    }

    /// The tenant's hooks now, without cloning anything.
    pub(crate) fn hooks(&self, tenant: &str) -> HookSet {
        self.map
            .load()
            .get(tenant)
            .map_or(HookSet::EMPTY, |t| t.hooks)
    }

    /// Replaces `plugin.name`'s entry in `tenant` (or adds it). Callers
    /// serialise writes (the host's admin lock), so `rcu` never retries
    /// in practice; it is still correct if they did not.
    pub(crate) fn put(&self, tenant: &str, plugin: Arc<LoadedPlugin>) {
        self.map.rcu(|map| {
            let mut map = Map::clone(map);
            let mut plugins: Vec<_> = map
                .get(tenant)
                .map(|t| {
                    t.plugins
                        .iter()
                        .filter(|p| p.name != plugin.name)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            plugins.push(Arc::clone(&plugin));
            map.insert(Arc::from(tenant), Arc::new(TenantPlugins::new(plugins)));
            map
        });
    }

    /// Removes `name` from `tenant`; returns the removed version.
    pub(crate) fn remove(&self, tenant: &str, name: &str) -> Option<Arc<LoadedPlugin>> {
        let mut removed = None;
        self.map.rcu(|map| {
            let mut map = Map::clone(map);
            removed = None;
            if let Some(t) = map.get(tenant) {
                let (gone, kept): (Vec<_>, Vec<_>) =
                    t.plugins.iter().cloned().partition(|p| &*p.name == name);
                removed = gone.into_iter().next();
                if kept.is_empty() {
                    map.remove(tenant);
                } else {
                    map.insert(Arc::from(tenant), Arc::new(TenantPlugins::new(kept)));
                }
            }
            map
        });
        removed
    }

    /// The active version of `name` in `tenant`.
    pub(crate) fn active(&self, tenant: &str, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.get(tenant)?
            .plugins
            .iter()
            .find(|p| &*p.name == name)
            .cloned()
    }
}
