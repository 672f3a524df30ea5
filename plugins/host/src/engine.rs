//! The wasmtime engine (one per host, and the gateway runs one host per
//! process) and the epoch ticker thread that drives CPU budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::{HostConfig, HostError};

/// Core instances one plugin component may contain. A Rust wasm32-wasip2
/// component has about five (the program, WASI glue shims, fixups);
/// generous room for other toolchains.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Tables per component (the program's plus the shims').
const TABLES_PER_COMPONENT: u32 = 8;

/// Builds the engine: component model, pooling allocator sized from the
/// config, copy-on-write memory images, epoch interruption for CPU budgets.
pub(crate) fn build(config: &HostConfig) -> Result<Engine, HostError> {
    let instances = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // Every call needs a fiber stack, and each live instance can be in
        // at most one call at a time.
        .total_stacks(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        // The slot size is a hard ceiling on top of the per-tenant limit
        // enforced by the store's ResourceLimiter.
        .max_memory_size(config.largest_memory_limit())
        // Keep a recycled instance's first pages mapped: re-instantiating
        // a plugin then costs a memset instead of page faults.
        .linear_memory_keep_resident(64 * 1024)
        .table_keep_resident(16 * 1024);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm).map_err(|e| HostError::Engine(format!("{e:#}")))
}

/// Increments the engine's epoch every `tick`, which is what lets a
/// running plugin be interrupted. Stops (and joins) when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EpochTicker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochTicker").finish_non_exhaustive()
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: std::time::Duration) -> Result<Self, HostError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let tick = tick.max(std::time::Duration::from_micros(100));
        let thread = std::thread::Builder::new()
            .name("quiver-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| HostError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // At most one tick of waiting.
            let _ = thread.join();
        }
    }
}
