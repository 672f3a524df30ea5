//! Deletes expired idempotency records. Runs on the writer thread, so it
//! never races an append, in chunks, so a large keyspace never stalls
//! appends for long: between two chunks the writer serves queued appends.

use std::ops::Bound;
use std::time::{Duration, Instant};

use super::codec::IdempotencyRecord;
use super::engine::{Engine, map_fjall, now_ms};
use crate::StoreError;

/// Records examined per chunk.
const CHUNK: usize = 1024;

#[derive(Debug)]
pub(crate) struct Sweeper {
    interval: Duration,
    window_ms: u64,
    next_due: Instant,
    /// `Some` while a sweep is under way: the last key examined, or empty
    /// when the sweep has not examined any key yet.
    cursor: Option<Vec<u8>>,
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
            self.cursor = Some(Vec::new());
            self.next_due = now + self.interval;
        }
    }

    /// Sweeps one chunk. Errors end this sweep early (the next interval
    /// retries); they never affect appends.
    pub(crate) fn step(&mut self, engine: &Engine) {
        let Some(cursor) = self.cursor.take() else {
            return;
        };
        match sweep_chunk(engine, &cursor, self.window_ms) {
            Ok(Some(last)) => self.cursor = Some(last),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "idempotency sweep stopped early"),
        }
    }
}

/// Deletes expired records among the next `CHUNK` keys after `cursor`, and
/// returns the last key examined, or `None` at the end of the keyspace.
fn sweep_chunk(
    engine: &Engine,
    cursor: &[u8],
    window_ms: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let now = now_ms();
    let start = if cursor.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(cursor)
    };
    // No fsync: a lost delete only means the record is swept again later,
    // and lookups ignore expired records anyway.
    let mut batch = engine.db.batch();
    let mut examined = 0;
    let mut last = None;
    for guard in engine
        .idempotency
        .range::<&[u8], _>((start, Bound::Unbounded))
        .take(CHUNK)
    {
        let (key, value) = guard.into_inner().map_err(map_fjall)?;
        examined += 1;
        match IdempotencyRecord::decode(&value) {
            Ok(record) if record.is_expired(now, window_ms) => {
                batch.remove(&engine.idempotency, key.clone())
            }
            Ok(_) => {}
            // Left in place for an operator to inspect; lookups of this key
            // will report the corruption.
            Err(err) => tracing::warn!(error = %err, "skipping corrupt idempotency record"),
        }
        last = Some(key);
    }
    batch.commit().map_err(map_fjall)?;
    if examined < CHUNK {
        return Ok(None);
    }
    Ok(last.map(|key| key.to_vec()))
}
