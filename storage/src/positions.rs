//! Positions of tracked entities (live location tracking): the latest fix
//! of every entity of a channel, and each entity's recent history.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{ChannelKey, StoreError, validate_channel};

/// Longest entity id, in bytes.
pub const MAX_ENTITY_BYTES: usize = 255;

/// Latest allowed `timestamp_ms`: the ScyllaDB backend writes the latest
/// position with a write timestamp of `timestamp_ms * 1000` microseconds,
/// which must fit an `i64` (this is the year 294,000 or so).
pub(crate) const MAX_POSITION_TIMESTAMP_MS: u64 = (i64::MAX / 1000) as u64;

/// One location fix of a tracked entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    pub entity: Arc<str>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy: Option<f64>,
    pub heading: Option<f64>,
    pub speed: Option<f64>,
    /// When the device took the fix, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The user (token subject) that reported it.
    pub user: Arc<str>,
}

/// A position and the channel it was reported on.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionRecord {
    pub channel: ChannelKey,
    pub position: Position,
}

/// Where positions of tracked entities are kept.
///
/// Names follow the rest of the store: tenant and channel names of 1 to 255
/// bytes, entity ids of 1 to [`MAX_ENTITY_BYTES`] bytes; latitude and
/// longitude must be finite, and `timestamp_ms` at most `i64::MAX / 1000`.
/// Anything else fails with [`StoreError::Invalid`] (in `save_positions`,
/// before anything of the batch is written).
#[async_trait]
pub trait PositionStore: Send + Sync + 'static {
    /// Saves each record as its entity's latest position in its channel (a
    /// record older, by `timestamp_ms`, than the stored latest does not
    /// replace it; of two with the same timestamp either may win) and
    /// appends it to the entity's history, which expires `history_ttl` after
    /// it is written (the ScyllaDB backend rounds it up to whole seconds).
    /// A second fix of one entity with the same timestamp replaces the first
    /// in the history. Called by the gateway's write-behind flusher with
    /// many records at once; backends write a batch in as few round trips
    /// as they can.
    ///
    /// Durability: no fsync required per call (positions are superseded
    /// within seconds). On `Err`, any part of the batch may be written.
    async fn save_positions(
        &self,
        batch: Vec<PositionRecord>,
        history_ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The latest position of every entity of the channel, at most `limit`,
    /// any order.
    async fn latest_positions(
        &self,
        channel: &ChannelKey,
        limit: usize,
    ) -> Result<Vec<Position>, StoreError>;

    /// One entity's history, newest first, only fixes with
    /// `timestamp_ms >= since_ms`, at most `limit`.
    async fn position_history(
        &self,
        channel: &ChannelKey,
        entity: &str,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Position>, StoreError>;
}

/// Checks an entity id: 1 to [`MAX_ENTITY_BYTES`] bytes.
pub(crate) fn validate_entity(entity: &str) -> Result<(), StoreError> {
    crate::registry::validate_name("entity id", entity, MAX_ENTITY_BYTES)
}

/// Checks one record against the rules every backend enforces.
pub(crate) fn validate_record(record: &PositionRecord) -> Result<(), StoreError> {
    validate_channel(&record.channel)?;
    let p = &record.position;
    validate_entity(&p.entity)?;
    if !p.lat.is_finite() || !p.lon.is_finite() {
        return Err(StoreError::Invalid(format!(
            "position of {:?} has a non-finite latitude or longitude ({}, {})",
            p.entity, p.lat, p.lon
        )));
    }
    if p.timestamp_ms > MAX_POSITION_TIMESTAMP_MS {
        return Err(StoreError::Invalid(format!(
            "position of {:?} has timestamp_ms {}; the limit is {MAX_POSITION_TIMESTAMP_MS}",
            p.entity, p.timestamp_ms
        )));
    }
    Ok(())
}
