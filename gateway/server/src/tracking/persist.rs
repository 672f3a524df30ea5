//! Write-behind persistence of positions: accepted updates are buffered in
//! memory and written to the store in one batch per interval, so no update
//! waits for the store and a store outage never slows the live path.
//!
//! The buffer is bounded. Past its bound, further updates are coalesced to
//! one per entity (their intermediate history is dropped and counted), so
//! the latest position of every entity still reaches the store once it is
//! back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quiver_storage::{ChannelKey, Position, PositionRecord, PositionStore};
use tracing::warn;

use crate::metrics::Metrics;

/// History records buffered before updates are coalesced per entity.
const MAX_BUFFERED: usize = 200_000;

/// Updates waiting to be written.
#[derive(Debug)]
pub struct WriteBehind {
    pending: Mutex<Pending>,
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct Pending {
    /// Every accepted update, by history TTL (one TTL per namespace).
    history: HashMap<Duration, Vec<PositionRecord>>,
    buffered: usize,
    /// Past the bound: the newest update per entity only.
    coalesced: HashMap<(ChannelKey, Arc<str>), (PositionRecord, Duration)>,
}

impl WriteBehind {
    pub(super) fn new(metrics: Metrics) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            metrics,
        }
    }

    pub(super) fn push(&self, channel: ChannelKey, position: Arc<Position>, ttl: Duration) {
        let record = PositionRecord {
            channel,
            position: Position::clone(&position),
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.add(record, ttl, &self.metrics);
    }

    /// Writes what is buffered. On failure the records go back into the
    /// buffer (within its bound) for the next attempt.
    pub async fn flush(&self, store: &dyn PositionStore) -> Result<(), quiver_storage::StoreError> {
        let batches = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.take()
        };
        let mut failure = None;
        for (ttl, batch) in batches {
            if failure.is_some() {
                self.requeue(batch, ttl);
                continue;
            }
            let count = batch.len() as u64;
            match store.save_positions(batch.clone(), ttl).await {
                Ok(()) => self.metrics.positions_persisted.inc_by(count),
                Err(error) => {
                    self.requeue(batch, ttl);
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn requeue(&self, batch: Vec<PositionRecord>, ttl: Duration) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for record in batch {
            pending.add(record, ttl, &self.metrics);
        }
    }

    /// Records waiting to be written.
    pub fn len(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.buffered + pending.coalesced.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pending {
    fn add(&mut self, record: PositionRecord, ttl: Duration, metrics: &Metrics) {
        if self.buffered < MAX_BUFFERED {
            self.buffered += 1;
            self.history.entry(ttl).or_default().push(record);
            return;
        }
        let key = (record.channel.clone(), record.position.entity.clone());
        let newer_held = self
            .coalesced
            .get(&key)
            .is_some_and(|(held, _)| held.position.timestamp_ms >= record.position.timestamp_ms);
        if !newer_held && self.coalesced.insert(key, (record, ttl)).is_some() {
            metrics
                .positions_dropped
                .with_label_values(&["history_overflow"])
                .inc();
        }
    }

    fn take(&mut self) -> Vec<(Duration, Vec<PositionRecord>)> {
        let mut batches: Vec<_> = std::mem::take(&mut self.history).into_iter().collect();
        self.buffered = 0;
        for (_, (record, ttl)) in self.coalesced.drain() {
            match batches.iter_mut().find(|(t, _)| *t == ttl) {
                Some((_, batch)) => batch.push(record),
                None => batches.push((ttl, vec![record])),
            }
        }
        batches
    }
}

/// Flushes `write_behind` every `interval` until `stop` flips, then once
/// more. A failing store is retried at the next interval, with a warning
/// per failure streak.
pub(super) async fn run(
    write_behind: Arc<WriteBehind>,
    store: Arc<dyn PositionStore>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut every_tick: impl FnMut(),
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            _ = stop.changed() => true,
        };
        every_tick();
        match write_behind.flush(store.as_ref()).await {
            Ok(()) => failing = false,
            Err(error) => {
                write_behind.metrics.position_store_errors.inc();
                if !failing {
                    warn!(%error, buffered = write_behind.len(), "saving positions failed; will retry");
                }
                failing = true;
            }
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}
