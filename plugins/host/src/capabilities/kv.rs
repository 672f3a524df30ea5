//! `quiver:plugin/kv`: the plugin's key-value data, backed by the
//! gateway's [`KeyValueStore`] under the scope (tenant, plugin name), so a
//! plugin sees only its own keys and survives restarts and version swaps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_storage::{KeyValueStore, KvScope};
use wasmtime::component::{HasData, Linker};

use crate::bindings::quiver::plugin::kv::{self, Host};
use crate::limits::CpuMeter;

/// What the capability needs: the store and the plugin's scope.
#[derive(Clone)]
pub(crate) struct KvCtx {
    pub(crate) store: Arc<dyn KeyValueStore>,
    pub(crate) scope: KvScope,
}

impl std::fmt::Debug for KvCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCtx").field("scope", &self.scope).finish()
    }
}

/// The context plus the call's CPU meter: time awaiting the store is not
/// the plugin's CPU time.
pub(crate) struct KvHost<'a> {
    pub(crate) ctx: &'a KvCtx,
    pub(crate) meter: &'a mut CpuMeter,
}

/// Store state that provides the kv capability.
pub(crate) trait KvView: Send {
    fn kv(&mut self) -> KvHost<'_>;
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvHost<'a>;
}

pub(crate) fn add_to_linker<T: KvView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasKv>(linker, T::kv)
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl KvHost<'_> {
    /// Runs a store call, charging its duration to host time.
    async fn timed<R>(&mut self, f: impl Future<Output = R>) -> R {
        self.meter.pause();
        let start = Instant::now();
        let r = f.await;
        self.meter.resume(start.elapsed());
        r
    }
}

impl Host for KvHost<'_> {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let (store, scope) = (Arc::clone(&self.ctx.store), self.ctx.scope.clone());
        let r = self
            .timed(async move { store.kv_get(&scope, &key).await })
            .await;
        r.map(|v| v.map(|b| b.to_vec())).map_err(|e| e.to_string())
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), String> {
        let (store, scope) = (Arc::clone(&self.ctx.store), self.ctx.scope.clone());
        let value = bytes::Bytes::from(value);
        let r = self
            .timed(async move { store.kv_set(&scope, &key, value, ttl(ttl_ms)).await })
            .await;
        r.map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        let (store, scope) = (Arc::clone(&self.ctx.store), self.ctx.scope.clone());
        let r = self
            .timed(async move { store.kv_delete(&scope, &key).await })
            .await;
        r.map_err(|e| e.to_string())
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, String> {
        let (store, scope) = (Arc::clone(&self.ctx.store), self.ctx.scope.clone());
        let r = self
            .timed(async move { store.kv_increment(&scope, &key, delta, ttl(ttl_ms)).await })
            .await;
        r.map_err(|e| e.to_string())
    }
}
