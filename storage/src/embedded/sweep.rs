//! Deletes expired idempotency records, then expired key-value data, then
//! expired position history. Runs
//! on the writer thread, so it never races an append, in chunks, so a large
//! keyspace never stalls appends for long: between two chunks the writer
//! serves queued appends.
//!
//! Key-value writes happen outside the writer thread under the engine's
//! `meta_lock` (see `kv.rs`). A kv chunk holds that lock from its reads to
//! its deletes, so it cannot delete a value written meanwhile; it only
//! *tries* the lock, and skips its turn when a key-value call holds it, so
//! the writer thread never waits for one. Position history chunks do the
//! same with `positions_lock`.

use std::ops::Bound;
use std::time::{Duration, Instant};

use fjall::Keyspace;

use super::codec::IdempotencyRecord;
use super::engine::{Engine, map_fjall, now_ms};
use super::kv::KvValue;
use super::positions::StoredPosition;
use crate::StoreError;

/// Records examined per chunk.
const CHUNK: usize = 1024;

#[derive(Debug)]
pub(crate) struct Sweeper {
    interval: Duration,
    window_ms: u64,
    next_due: Instant,
    /// `Some` while a sweep is under way: the keyspace being swept and the
    /// last key examined in it (empty before the first).
    cursor: Option<(Phase, Vec<u8>)>,
}

/// The keyspaces a sweep walks, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idempotency,
    KeyValue,
    PositionHistory,
}

impl Sweeper {
    pub(crate) fn new(interval: Duration, window_ms: u64) -> Self {
        Self {
            interval,
            window_ms,
            next_due: Instant::now() + interval,
            cursor: None,
        }
    }

    /// Whether a sweep is under way and has chunks left.
    pub(crate) fn active(&self) -> bool {
        self.cursor.is_some()
    }

    /// Starts a sweep if the interval has passed since the last one began.
    pub(crate) fn start_if_due(&mut self) {
        let now = Instant::now();
        if self.cursor.is_none() && now >= self.next_due {
            self.cursor = Some((Phase::Idempotency, Vec::new()));
            self.next_due = now + self.interval;
        }
    }

    /// Sweeps one chunk. Errors end this sweep early (the next interval
    /// retries); they never affect appends.
    pub(crate) fn step(&mut self, engine: &Engine) {
        let Some((phase, cursor)) = self.cursor.take() else {
            return;
        };
        let now = now_ms();
        let swept = match phase {
            Phase::Idempotency => sweep_chunk(engine, &engine.idempotency, &cursor, |value| {
                IdempotencyRecord::decode(value).map(|r| r.is_expired(now, self.window_ms))
            }),
            Phase::KeyValue => {
                let Ok(_guard) = engine.meta_lock.try_lock() else {
                    // A key-value call is writing; try again next turn.
                    self.cursor = Some((phase, cursor));
                    return;
                };
                sweep_chunk(engine, &engine.kv, &cursor, |value| {
                    KvValue::decode(value).map(|v| v.is_expired(now))
                })
            }
            Phase::PositionHistory => {
                let Ok(_guard) = engine.positions_lock.try_lock() else {
                    // Positions are being written; try again next turn.
                    self.cursor = Some((phase, cursor));
                    return;
                };
                sweep_chunk(engine, &engine.positions_history, &cursor, |value| {
                    StoredPosition::expiry(value).map(|at| StoredPosition::is_expired(at, now))
                })
            }
        };
        match (swept, phase) {
            (Ok(Some(last)), _) => self.cursor = Some((phase, last)),
            (Ok(None), Phase::Idempotency) => self.cursor = Some((Phase::KeyValue, Vec::new())),
            (Ok(None), Phase::KeyValue) => {
                self.cursor = Some((Phase::PositionHistory, Vec::new()));
            }
            (Ok(None), Phase::PositionHistory) => {}
            (Err(err), _) => tracing::warn!(error = %err, ?phase, "sweep stopped early"),
        }
    }
}

/// Deletes expired records among the next `CHUNK` keys after `cursor`, and
/// returns the last key examined, or `None` at the end of the keyspace.
fn sweep_chunk(
    engine: &Engine,
    keyspace: &Keyspace,
    cursor: &[u8],
    is_expired: impl Fn(&[u8]) -> Result<bool, StoreError>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let start = if cursor.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(cursor)
    };
    // No fsync: a lost delete only means the record is swept again later,
    // and reads ignore expired records anyway.
    let mut batch = engine.db.batch();
    let mut examined = 0;
    let mut last = None;
    for guard in keyspace
        .range::<&[u8], _>((start, Bound::Unbounded))
        .take(CHUNK)
    {
        let (key, value) = guard.into_inner().map_err(map_fjall)?;
        examined += 1;
        match is_expired(&value) {
            Ok(true) => batch.remove(keyspace, key.clone()),
            Ok(false) => {}
            // Left in place for an operator to inspect; lookups of this key
            // will report the corruption.
            Err(err) => tracing::warn!(error = %err, "skipping a corrupt record"),
        }
        last = Some(key);
    }
    batch.commit().map_err(map_fjall)?;
    if examined < CHUNK {
        return Ok(None);
    }
    Ok(last.map(|key| key.to_vec()))
}
