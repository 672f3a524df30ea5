//! Live figures of a running scenario: counters and latency samples that
//! every task feeds, read four times a second by the progress display and
//! once a second into the run's time series (the report's charts).
//!
//! The hot path takes no lock per event: each task records into a
//! [`Probe`], which buffers samples and hands them to one of a few shared
//! histogram shards every 128 samples or 100 ms. The shards keep two
//! histograms each: the measurement window's (the final figures) and the
//! current second's (the charts and the progress line).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::common::Timeline;
use crate::stats::{Latency, Summary};

/// Shards per latency kind: enough that a few thousand tasks flushing now
/// and then rarely meet on one lock.
const SHARDS: usize = 16;
/// A probe hands its samples over after this many...
const FLUSH_SAMPLES: usize = 128;
/// ...or after this long, so a slow stream still shows up within a second.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What a latency sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Publish (scheduled send time) to delivery at a subscriber.
    Delivery,
    /// Publish (scheduled send time) to the publisher's ack.
    Ack,
}

#[derive(Debug, Default)]
struct Shard {
    /// Samples inside the measurement window.
    window: Latency,
    /// Samples since the sampler last took them (any phase).
    interval: Latency,
}

#[derive(Debug)]
struct Shards(Vec<Mutex<Shard>>);

impl Shards {
    fn new() -> Self {
        Self((0..SHARDS).map(|_| Mutex::default()).collect())
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.0[index % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes (and resets) the interval histograms of every shard.
    fn take_interval(&self) -> Latency {
        let mut all = Latency::new();
        for index in 0..SHARDS {
            let mut shard = self.lock(index);
            all.merge(&shard.interval);
            shard.interval.reset();
        }
        all
    }

    fn window(&self) -> Latency {
        let mut all = Latency::new();
        for index in 0..SHARDS {
            all.merge(&self.lock(index).window);
        }
        all
    }
}

/// The shared state of one run. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Live {
    timeline: Mutex<Option<Timeline>>,
    delivered: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    connections: AtomicI64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    /// Resident memory of the server under test, bytes (0 = unknown);
    /// set by scenarios that watch it.
    server_rss: AtomicU64,
    deliveries: Shards,
    acks: Shards,
}

impl Live {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            timeline: Mutex::new(None),
            delivered: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            server_rss: AtomicU64::new(0),
            deliveries: Shards::new(),
            acks: Shards::new(),
        })
    }

    /// Fixes the window that final latencies are taken from. Samples
    /// before this call count for the charts only.
    pub fn set_timeline(&self, timeline: Timeline) {
        *self.timeline.lock().unwrap_or_else(PoisonError::into_inner) = Some(timeline);
    }

    fn timeline(&self) -> Option<Timeline> {
        *self.timeline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A recorder for one task; `index` spreads tasks over the shards.
    pub fn probe(self: &Arc<Self>, kind: Kind, index: usize) -> Probe {
        Probe {
            live: Arc::clone(self),
            timeline: self.timeline(),
            kind,
            shard: index,
            samples: Vec::with_capacity(FLUSH_SAMPLES),
            events: 0,
            last_flush: Instant::now(),
        }
    }

    pub fn add_errors(&self, count: u64) {
        self.errors.fetch_add(count, Ordering::Relaxed);
    }

    /// One connection established (`+1`) or gone (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
        if delta > 0 {
            self.connects
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    pub fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_server_rss(&self, bytes: u64) {
        self.server_rss.store(bytes, Ordering::Relaxed);
    }

    /// Publish→deliver latency over the measurement window, all tasks.
    pub fn delivery_latency(&self) -> Latency {
        self.deliveries.window()
    }

    /// Publish→ack latency over the measurement window, all tasks.
    pub fn ack_latency(&self) -> Latency {
        self.acks.window()
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        Counters {
            delivered: self.delivered.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            connections: self
                .connections
                .load(Ordering::Relaxed)
                .max(0)
                .unsigned_abs(),
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            server_rss: self.server_rss.load(Ordering::Relaxed),
        }
    }

    /// Latency samples since the last call, per kind.
    pub(crate) fn take_intervals(&self) -> (Latency, Latency) {
        (self.deliveries.take_interval(), self.acks.take_interval())
    }
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub delivered: u64,
    pub acked: u64,
    pub errors: u64,
    pub connections: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub server_rss: u64,
}

/// One task's buffered recorder; flushes on drop.
#[derive(Debug)]
pub struct Probe {
    live: Arc<Live>,
    timeline: Option<Timeline>,
    kind: Kind,
    shard: usize,
    /// (micros, inside the measurement window)
    samples: Vec<(u64, bool)>,
    /// Events not yet added to the shared counter.
    events: u64,
    last_flush: Instant,
}

impl Probe {
    /// Records one event (a delivery or an ack) of this latency at `now`.
    pub fn record(&mut self, latency: Duration, now: Instant) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let in_window = self.timeline.is_some_and(|t| t.measures(now));
        self.samples.push((micros, in_window));
        self.events += 1;
        if self.samples.len() >= FLUSH_SAMPLES || now - self.last_flush >= FLUSH_EVERY {
            self.flush_at(now);
        }
    }

    /// Counts one event that carries no latency (a foreign payload).
    pub fn count(&mut self) {
        self.events += 1;
    }

    /// Counts one failed request or subscription.
    pub fn error(&self) {
        self.errors(1);
    }

    pub fn errors(&self, count: u64) {
        if count > 0 {
            self.live.add_errors(count);
        }
    }

    fn flush_at(&mut self, now: Instant) {
        self.last_flush = now;
        let counter = match self.kind {
            Kind::Delivery => &self.live.delivered,
            Kind::Ack => &self.live.acked,
        };
        counter.fetch_add(std::mem::take(&mut self.events), Ordering::Relaxed);
        if self.samples.is_empty() {
            return;
        }
        let shards = match self.kind {
            Kind::Delivery => &self.live.deliveries,
            Kind::Ack => &self.live.acks,
        };
        let mut shard = shards.lock(self.shard);
        for (micros, in_window) in self.samples.drain(..) {
            let latency = Duration::from_micros(micros);
            shard.interval.record(latency);
            if in_window {
                shard.window.record(latency);
            }
        }
    }

    pub fn flush(&mut self) {
        self.flush_at(Instant::now());
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One second of a run, as charted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the monitor started (end of this second).
    pub t_s: f64,
    pub deliveries_per_s: f64,
    pub acks_per_s: f64,
    pub connections: u64,
    pub connects_per_s: f64,
    pub errors: u64,
    pub connect_failures: u64,
    /// Server resident memory, MiB (0 when not watched).
    pub server_rss_mib: f64,
    pub delivery: Summary,
    pub ack: Summary,
}

impl Sample {
    /// The sample for the interval between `before` and `now`, `dt` long.
    pub(crate) fn between(
        t_s: f64,
        dt: f64,
        before: Counters,
        now: Counters,
        (delivery, ack): (&Latency, &Latency),
    ) -> Self {
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt.max(1e-9);
        Self {
            t_s,
            deliveries_per_s: rate(before.delivered, now.delivered),
            acks_per_s: rate(before.acked, now.acked),
            connections: now.connections,
            connects_per_s: rate(before.connects, now.connects),
            errors: now.errors,
            connect_failures: now.connect_failures,
            server_rss_mib: now.server_rss as f64 / (1024.0 * 1024.0),
            delivery: delivery.summary(),
            ack: ack.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_count_and_keep_window_samples_only() {
        let live = Live::new();
        let start = Instant::now();
        let s = Duration::from_secs;
        live.set_timeline(Timeline::new(start, s(1), s(10), s(1)));
        let mut probe = live.probe(Kind::Delivery, 3);
        probe.record(Duration::from_millis(2), start); // warmup: charts only
        probe.record(Duration::from_millis(4), start + s(2));
        probe.count();
        drop(probe);
        assert_eq!(live.counters().delivered, 3);
        assert_eq!(live.delivery_latency().count(), 1);
        let (interval, acks) = live.take_intervals();
        assert_eq!((interval.count(), acks.count()), (2, 0));
        // Taking resets the interval, never the window.
        assert_eq!(live.take_intervals().0.count(), 0);
        assert_eq!(live.delivery_latency().count(), 1);
    }

    #[test]
    fn connections_gauge_and_connect_total() {
        let live = Live::new();
        live.connection(1);
        live.connection(1);
        live.connection(-1);
        let c = live.counters();
        assert_eq!((c.connections, c.connects), (1, 2));
    }
}
