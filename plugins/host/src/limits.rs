//! Per-instance limits: memory through wasmtime's `ResourceLimiter`, CPU
//! through epoch interruption and the thread's CPU clock. (The wall-clock deadline is a tokio timeout
//! around the call, in `pool.rs`.)

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};

/// Caps an instance's linear memory and remembers whether the plugin hit
/// the cap, so a trap that follows (Rust aborts when allocation fails) is
/// reported as a memory error rather than a generic trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Largest memory size granted so far: the recycle mark compares it.
    pub(crate) current: usize,
    /// A growth was refused during the current call.
    pub(crate) refused: bool,
}

/// Table elements per table; ample for Rust plugins (a few hundred).
const MAX_TABLE_ELEMENTS: usize = 20_000;

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            current: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            // Refuse (memory.grow returns -1) rather than trap here: the
            // plugin may handle it, and if it aborts, `refused` classifies
            // the trap.
            self.refused = true;
            return Ok(false);
        }
        self.current = self.current.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The error an epoch callback raises when a call's CPU budget is spent;
/// recognised by downcasting the trap.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget exhausted")]
pub(crate) struct CpuBudgetExceeded;

/// CPU time of the calling thread. Linux and macOS have a per-thread CPU
/// clock; elsewhere wall time stands in (preemption then counts).
fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// A call's CPU accounting, in two phases so the common call pays for no
/// clock but one `Instant::now()`:
///
/// 1. Wall phase: the epoch deadline is armed for half the budget of wall
///    time (minus time awaiting host capabilities). Nearly every call ends
///    here. CPU time can never exceed wall time, so the plugin has used at
///    most half its budget when this phase runs out.
/// 2. CPU phase: from then on the thread's real CPU clock is read at each
///    epoch deadline, and the call traps once it has burnt the other half.
///
/// So a spinning plugin is stopped after at most its budget of CPU (plus
/// a tick), and a call that was merely preempted (its thread descheduled
/// on a busy machine, which inflates wall time) is never stopped for it:
/// only real CPU use in phase 2 counts.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    budget: Duration,
    tick: Duration,
    started: Instant,
    /// Awaiting host capabilities during this call (wall phase).
    host_wait: Duration,
    /// Set once the wall phase ran out.
    cpu: Option<CpuPhase>,
}

#[derive(Debug)]
struct CpuPhase {
    /// Thread CPU clock when the plugin last started running on a thread.
    mark: Duration,
    /// CPU the plugin burnt in this phase.
    used: Duration,
}

impl CpuMeter {
    pub(crate) fn new(budget: Duration, tick: Duration) -> Self {
        Self {
            budget,
            tick: tick.max(Duration::from_micros(100)),
            started: Instant::now(),
            host_wait: Duration::ZERO,
            cpu: None,
        }
    }

    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    fn half(&self) -> Duration {
        self.budget / 2
    }

    /// Starts a call; returns the epoch deadline, in ticks, to arm.
    pub(crate) fn begin(&mut self, now: Instant) -> u64 {
        self.started = now;
        self.host_wait = Duration::ZERO;
        self.cpu = None;
        self.ticks(self.half())
    }

    /// The plugin calls a host capability that may wait (storage): its
    /// time no longer counts, and it may resume on another thread.
    pub(crate) fn pause(&mut self) {
        if let Some(p) = &mut self.cpu {
            p.used += thread_cpu_time().saturating_sub(p.mark);
        }
    }

    /// The host capability returned after `waited`.
    pub(crate) fn resume(&mut self, waited: Duration) {
        self.host_wait += waited;
        if let Some(p) = &mut self.cpu {
            p.mark = thread_cpu_time();
        }
    }

    /// Ticks covering `d`, rounded up, plus one because the first tick may
    /// come at any moment after arming.
    fn ticks(&self, d: Duration) -> u64 {
        let t = d.as_nanos().div_ceil(self.tick.as_nanos().max(1));
        u64::try_from(t).unwrap_or(u64::MAX / 2).saturating_add(1)
    }

    /// Called when the epoch deadline passes: re-arms, or traps once the
    /// CPU phase has burnt its half of the budget.
    fn on_deadline(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let half = self.half();
        let Some(p) = &mut self.cpu else {
            let wall = self.started.elapsed().saturating_sub(self.host_wait);
            if wall < half {
                return Ok(UpdateDeadline::Continue(self.ticks(half - wall)));
            }
            self.cpu = Some(CpuPhase {
                mark: thread_cpu_time(),
                used: Duration::ZERO,
            });
            return Ok(UpdateDeadline::Continue(self.ticks(half)));
        };
        let now = thread_cpu_time();
        p.used += now.saturating_sub(p.mark);
        p.mark = now;
        if p.used >= half {
            return Err(wasmtime::Error::new(CpuBudgetExceeded));
        }
        let left = half - p.used;
        Ok(UpdateDeadline::Continue(self.ticks(left)))
    }
}

/// Store state that can reach its meter; implemented by the plugin state.
pub(crate) trait HasCpuMeter {
    fn cpu_meter(&mut self) -> &mut CpuMeter;
}

/// Installs the CPU budget check on a store.
pub(crate) fn install_epoch_callback<T: HasCpuMeter + 'static>(store: &mut wasmtime::Store<T>) {
    store.epoch_deadline_callback(|mut ctx: StoreContextMut<'_, T>| {
        ctx.data_mut().cpu_meter().on_deadline()
    });
}
