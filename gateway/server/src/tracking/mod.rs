//! Live tracking: the newest position of every entity of a tracking
//! channel, fanned out to the channel's watchers with coalescing, and
//! persisted behind the live path.
//!
//! Positions are latest-wins. The tracker keeps one position per entity in
//! memory and accepts an update only if it is newer (by the device's
//! timestamp) than the one it holds, so nothing downstream ever sees an
//! entity move backwards in time, whatever the network reordered or lost.
//! Each channel has a bounded broadcast ring of accepted updates; a watcher
//! that falls a whole ring behind loses nothing that matters: it re-reads
//! the channel's latest positions instead (see `watch`). Writes to the store
//! are batched by a write-behind task (see `persist`), so no update waits
//! for a disk or a database.

mod persist;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use quiver_storage::{ChannelKey, Position, PositionStore};
use tokio::sync::{OnceCell, broadcast};
use tracing::debug;

use crate::metrics::Metrics;

pub use persist::WriteBehind;
pub use watch::{WatchRequest, watch};

/// Accepted updates a channel's ring holds for its watchers.
const RING: usize = 4096;
/// Most latest positions read back from the store for one channel.
const MAX_LOADED: usize = 100_000;

/// Where a watcher's datagrams go: the QUIC connection, or nothing when the
/// peer or path cannot carry datagrams.
pub trait DatagramOut: Send + Sync + 'static {
    /// Largest datagram the connection can send right now, if any.
    fn max_size(&self) -> Option<usize>;
    /// Queues one datagram. QUIC drops the oldest queued datagrams when the
    /// send buffer is full, which is what latest-wins data wants.
    fn send(&self, datagram: Bytes) -> Result<(), DatagramFailed>;
}

/// A datagram could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramFailed {
    /// Too large for the path, or datagrams are off: use the stream.
    UseStream,
    /// The connection is gone.
    Closed,
}

/// Every tracking channel of this node.
pub struct Tracker {
    channels: Mutex<HashMap<ChannelKey, Arc<TrackedChannel>>>,
    store: Arc<dyn PositionStore>,
    write_behind: Arc<WriteBehind>,
    metrics: Metrics,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

/// One tracking channel: its entities' newest positions and the ring its
/// watchers read.
#[derive(Debug)]
pub struct TrackedChannel {
    latest: Mutex<HashMap<Arc<str>, Arc<Position>>>,
    updates: broadcast::Sender<Arc<Position>>,
    /// Set once the latest positions stored before this node (re)started
    /// were merged in.
    loaded: OnceCell<()>,
}

impl Tracker {
    pub fn new(store: Arc<dyn PositionStore>, metrics: Metrics) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            write_behind: Arc::new(WriteBehind::new(metrics.clone())),
            store,
            metrics,
        }
    }

    /// The write-behind buffer, for the task that flushes it.
    pub fn write_behind(&self) -> &Arc<WriteBehind> {
        &self.write_behind
    }

    pub fn store(&self) -> &Arc<dyn PositionStore> {
        &self.store
    }

    /// Takes `position` as its entity's newest on `channel` if it is newer
    /// than the one held; older or equal ones are dropped and counted.
    pub fn update(&self, channel: ChannelKey, position: Position, history_ttl: Duration) {
        let tracked = self.channel(&channel);
        let position = {
            let mut latest = tracked
                .latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = latest.get(&position.entity)
                && held.timestamp_ms >= position.timestamp_ms
            {
                self.metrics
                    .positions_dropped
                    .with_label_values(&["stale"])
                    .inc();
                return;
            }
            let position = Arc::new(position);
            latest.insert(position.entity.clone(), position.clone());
            // Sent under the lock, so the ring's order is the order of
            // acceptance and a watcher never sees an older fix after a newer.
            let _ = tracked.updates.send(position.clone());
            position
        };
        self.metrics.positions_accepted.inc();
        self.write_behind.push(channel, position, history_ttl);
    }

    /// The channel's latest positions, merged with the stored ones the
    /// first time they are needed after a start.
    pub async fn latest(&self, channel: &ChannelKey) -> Vec<Arc<Position>> {
        let tracked = self.channel(channel);
        self.ensure_loaded(channel, &tracked).await;
        tracked.snapshot()
    }

    /// The channel's state, created on first use.
    pub fn channel(&self, key: &ChannelKey) -> Arc<TrackedChannel> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(key) {
            return channel.clone();
        }
        let channel = Arc::new(TrackedChannel {
            latest: Mutex::new(HashMap::new()),
            updates: broadcast::channel(RING).0,
            loaded: OnceCell::new(),
        });
        channels.insert(key.clone(), channel.clone());
        channel
    }

    /// Merges the stored latest positions into memory once per channel and
    /// node lifetime. A store that is away leaves the channel unloaded, to be
    /// tried again by the next watcher: live positions flow meanwhile.
    async fn ensure_loaded(&self, key: &ChannelKey, channel: &TrackedChannel) {
        let loaded = channel
            .loaded
            .get_or_try_init(|| async {
                let stored = self.store.latest_positions(key, MAX_LOADED).await?;
                let mut latest = channel
                    .latest
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for position in stored {
                    let newer_held = latest
                        .get(&position.entity)
                        .is_some_and(|held| held.timestamp_ms >= position.timestamp_ms);
                    if !newer_held {
                        latest.insert(position.entity.clone(), Arc::new(position));
                    }
                }
                Ok::<(), quiver_storage::StoreError>(())
            })
            .await;
        if let Err(error) = loaded {
            debug!(%error, channel = %key.channel, "stored positions not loaded; serving memory only");
        }
    }

    /// Forgets entities not heard from for `idle` (they stay in the store)
    /// and channels left with no entity and no watcher, so memory follows
    /// what is live.
    pub fn sweep(&self, idle: Duration, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, channel| {
            let mut latest = channel
                .latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            latest.retain(|_, position| position.timestamp_ms >= cutoff);
            !latest.is_empty() || channel.updates.receiver_count() > 0
        });
    }
}

impl TrackedChannel {
    fn snapshot(&self) -> Vec<Arc<Position>> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.values().cloned().collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Position>> {
        self.updates.subscribe()
    }
}

/// How often buffered positions are written to the store.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Entities silent for this long leave memory (not the store).
const IDLE_ENTITY: Duration = Duration::from_secs(3600);
/// How often idle entities are swept.
const SWEEP_EVERY: u32 = 60;

impl Tracker {
    /// Runs the write-behind flusher and the memory sweep until `stop`
    /// flips; the last flush happens after that.
    pub async fn run_background(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let mut ticks = 0u32;
        let tracker = self.clone();
        let sweep = move || {
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(SWEEP_EVERY) {
                tracker.sweep(IDLE_ENTITY, crate::tracking::unix_ms());
            }
        };
        persist::run(
            self.write_behind.clone(),
            self.store.clone(),
            FLUSH_INTERVAL,
            stop,
            sweep,
        )
        .await;
    }
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
