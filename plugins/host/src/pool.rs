//! Instance reuse for one plugin version. A call checks an instance out
//! (an idle one, or a fresh one from the `InstancePre`), runs under the
//! CPU budget and the wall-clock deadline, and checks it back in unless it
//! failed, has served `recycle_after_calls`, or grew past the memory mark.
//! A failed instance is dropped, never reused: its memory may be corrupt.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::Store;

use crate::CallError;
use crate::bindings::{Plugin as Guest, PluginPre};
use crate::limits::{CpuBudgetExceeded, install_epoch_callback};
use crate::metrics::PluginMetrics;
use crate::state::{PluginEnv, PluginState};

/// A live instance and its store.
pub(crate) struct Instance {
    pub(crate) store: Store<PluginState>,
    pub(crate) guest: Guest,
    calls: u64,
}

/// When instances are recycled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecyclePolicy {
    pub(crate) max_idle: usize,
    pub(crate) after_calls: u64,
    pub(crate) memory_mark: usize,
}

pub(crate) struct InstancePool {
    pre: PluginPre<PluginState>,
    env: Arc<PluginEnv>,
    idle: Mutex<Vec<Instance>>,
    policy: RecyclePolicy,
    pub(crate) metrics: PluginMetrics,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("env", &self.env)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A call in progress: the instance plus when it started.
pub(crate) struct Checkout {
    pub(crate) instance: Instance,
    started: Instant,
}

impl InstancePool {
    pub(crate) fn new(
        pre: PluginPre<PluginState>,
        env: Arc<PluginEnv>,
        policy: RecyclePolicy,
        metrics: PluginMetrics,
    ) -> Self {
        Self {
            pre,
            env,
            idle: Mutex::new(Vec::new()),
            policy,
            metrics,
        }
    }

    pub(crate) fn env(&self) -> &PluginEnv {
        &self.env
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // Nothing panics while holding this lock; recover anyway.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An instance armed for one call.
    pub(crate) async fn checkout(&self) -> Result<Checkout, CallError> {
        let started = Instant::now();
        let popped = self.idle().pop();
        // One clock read on the hot path: a reused instance starts its
        // call now; a fresh one after its instantiation.
        let (mut instance, now) = match popped {
            Some(i) => (i, started),
            None => (self.instantiate().await?, Instant::now()),
        };
        let ticks = instance.store.data_mut().begin_call(now);
        instance.store.set_epoch_deadline(ticks);
        Ok(Checkout { instance, started })
    }

    /// Creates an instance. Instantiation runs plugin code (initialisers),
    /// so it runs under the same budget and deadline as a call.
    async fn instantiate(&self) -> Result<Instance, CallError> {
        let mut store = Store::new(self.pre.engine(), PluginState::new(Arc::clone(&self.env)));
        store.limiter(|s| &mut s.memory);
        install_epoch_callback(&mut store);
        let ticks = store.data_mut().begin_call(Instant::now());
        store.set_epoch_deadline(ticks);
        self.metrics.instantiations.inc();
        let deadline = self.env.limits.wall_deadline;
        let guest =
            match tokio::time::timeout(deadline, self.pre.instantiate_async(&mut store)).await {
                Ok(Ok(guest)) => guest,
                Ok(Err(e)) => {
                    let error = if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                        CallError::Overloaded {
                            message: format!("{e:#}"),
                        }
                    } else {
                        match classify(&e, &store) {
                            CallError::Trap { message } => CallError::Instantiate { message },
                            other => other,
                        }
                    };
                    self.metrics.error(&error);
                    return Err(error);
                }
                Err(_) => {
                    let error = CallError::Deadline { deadline };
                    self.metrics.error(&error);
                    return Err(error);
                }
            };
        Ok(Instance {
            store,
            guest,
            calls: 0,
        })
    }

    /// Ends a call: records metrics, returns the instance to the pool if
    /// it may be reused, and turns the outcome into the host's error.
    pub(crate) fn finish<R>(
        &self,
        hook: Option<crate::Hook>,
        mut checkout: Checkout,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        let result = match outcome {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(classify(&e, &checkout.instance.store)),
            Err(_) => Err(CallError::Deadline {
                deadline: self.env.limits.wall_deadline,
            }),
        };
        let seconds = checkout.started.elapsed().as_secs_f64();
        match hook {
            Some(hook) => self.metrics.observe(hook, seconds, result.as_ref().err()),
            None => {
                if let Err(e) = &result {
                    self.metrics.error(e);
                }
            }
        }
        if result.is_ok() {
            checkout.instance.calls += 1;
            self.checkin(checkout.instance);
        } else {
            tracing::debug!(tenant = %self.env.tenant, plugin = %self.env.name,
                "dropping plugin instance after a failed call");
        }
        result
    }

    fn checkin(&self, instance: Instance) {
        let memory = instance.store.data().memory.current;
        if instance.calls >= self.policy.after_calls || memory > self.policy.memory_mark {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < self.policy.max_idle {
            idle.push(instance);
        }
    }
}

/// Names why a call failed, from the error and what the store recorded.
fn classify(error: &wasmtime::Error, store: &Store<PluginState>) -> CallError {
    let state = store.data();
    if error.is::<CpuBudgetExceeded>() {
        return CallError::Timeout {
            budget: state.cpu.budget(),
        };
    }
    if state.memory.refused {
        return CallError::Memory {
            limit_bytes: state.env_limits().memory_limit_bytes,
        };
    }
    let mut message = match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) => format!("the plugin called exit({})", exit.0),
        None => format!("{error:#}"),
    };
    let stderr = state.stderr.text();
    if !stderr.is_empty() {
        // Keep the end: Rust's panic message is the last thing written.
        let tail: String = stderr
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        message = format!("{message}; stderr: {tail}");
    }
    CallError::Trap { message }
}
