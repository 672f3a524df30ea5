//! [`PositionStore`] for the embedded store.
//!
//! Keys start with the channel prefix (`keys.rs`), so one channel's
//! positions are one contiguous range and no scan reaches another tenant:
//! - `positions_latest`: prefix + entity id (the rest of the key);
//! - `positions_history`: prefix + `[len(entity): u8][entity]` +
//!   timestamp_ms (u64, big-endian), so an entity's history is one range in
//!   time order and a reverse scan reads it newest first.
//!
//! Value, format 1 (both keyspaces):
//! `[1][expires_at_ms: u64 BE, 0 = never][timestamp_ms: u64 BE]`
//! `[lat: f64 BE][lon: f64 BE][flags: u8][accuracy][heading][speed]`
//! `[entity: varint len + utf8][user: the rest, utf8]`, where flags bits 0-2
//! say which of accuracy, heading and speed follow (each an f64 BE).
//!
//! Writes are one fjall batch per call without an fsync (positions are
//! superseded within seconds; the journal reaches the disk with the next
//! durable write or flush). They take `positions_lock`, because keeping the
//! newest latest position is a read-compare-write. History values carry
//! their expiry: expired ones read as absent, and the writer thread's sweep
//! deletes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::codec::{Reader, put_bytes};
use super::engine::{Engine, map_fjall, now_ms};
use super::{EmbeddedStore, blocking, keys};
use crate::positions::{validate_entity, validate_record};
use crate::{ChannelKey, Position, PositionRecord, PositionStore, StoreError};

const POSITION_V1: u8 = 1;

/// Reads preallocate at most this many slots, whatever `limit` says.
const MAX_PREALLOCATED: usize = 1024;

const HAS_ACCURACY: u8 = 1;
const HAS_HEADING: u8 = 2;
const HAS_SPEED: u8 = 4;

fn encode(p: &Position, expires_at_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 * 7 + 1 + 2 + p.entity.len() + p.user.len());
    out.push(POSITION_V1);
    out.extend_from_slice(&expires_at_ms.to_be_bytes());
    out.extend_from_slice(&p.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&p.lat.to_be_bytes());
    out.extend_from_slice(&p.lon.to_be_bytes());
    let optional = [
        (HAS_ACCURACY, p.accuracy),
        (HAS_HEADING, p.heading),
        (HAS_SPEED, p.speed),
    ];
    let flags = optional
        .iter()
        .filter(|(_, v)| v.is_some())
        .fold(0, |f, (bit, _)| f | bit);
    out.push(flags);
    for v in optional.iter().filter_map(|(_, v)| *v) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    put_bytes(&mut out, p.entity.as_bytes());
    out.extend_from_slice(p.user.as_bytes());
    out
}

/// A stored position and its expiry (0 = never).
pub(crate) struct StoredPosition {
    pub(crate) expires_at_ms: u64,
    pub(crate) position: Position,
}

impl StoredPosition {
    /// Reads only the expiry, for the sweep.
    pub(crate) fn expiry(raw: &[u8]) -> Result<u64, StoreError> {
        let mut r = Reader::new(raw, "position");
        check_version(&mut r)?;
        Ok(u64::from_be_bytes(r.array()?))
    }

    /// Reads only the timestamp, to compare a new latest position.
    fn timestamp(raw: &[u8]) -> Result<u64, StoreError> {
        let mut r = Reader::new(raw, "position");
        check_version(&mut r)?;
        let _expires: [u8; 8] = r.array()?;
        Ok(u64::from_be_bytes(r.array()?))
    }

    pub(crate) fn decode(raw: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader::new(raw, "position");
        check_version(&mut r)?;
        let expires_at_ms = u64::from_be_bytes(r.array()?);
        let timestamp_ms = u64::from_be_bytes(r.array()?);
        let lat = f64::from_be_bytes(r.array()?);
        let lon = f64::from_be_bytes(r.array()?);
        let flags = r.u8()?;
        if flags & !(HAS_ACCURACY | HAS_HEADING | HAS_SPEED) != 0 {
            return Err(r.corrupt(&format!("unknown flags {flags:#x}")));
        }
        let mut optional = |bit: u8| -> Result<Option<f64>, StoreError> {
            if flags & bit == 0 {
                return Ok(None);
            }
            Ok(Some(f64::from_be_bytes(r.array()?)))
        };
        let accuracy = optional(HAS_ACCURACY)?;
        let heading = optional(HAS_HEADING)?;
        let speed = optional(HAS_SPEED)?;
        let entity: Arc<str> = r.string()?.into();
        let user = std::str::from_utf8(r.rest()).map_err(|_| StoreError::Corrupt {
            what: "position value: user is not UTF-8".into(),
        })?;
        Ok(Self {
            expires_at_ms,
            position: Position {
                entity,
                lat,
                lon,
                accuracy,
                heading,
                speed,
                timestamp_ms,
                user: user.into(),
            },
        })
    }

    pub(crate) fn is_expired(expires_at_ms: u64, now_ms: u64) -> bool {
        expires_at_ms != 0 && expires_at_ms <= now_ms
    }
}

fn check_version(r: &mut Reader<'_>) -> Result<(), StoreError> {
    let version = r.u8()?;
    if version != POSITION_V1 {
        return Err(r.corrupt(&format!("unknown format version {version}")));
    }
    Ok(())
}

fn latest_key(prefix: &[u8], entity: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + entity.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(entity.as_bytes());
    key
}

/// The history prefix of one entity: channel prefix + length-prefixed id.
fn history_prefix(prefix: &[u8], entity: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 1 + entity.len() + 8);
    key.extend_from_slice(prefix);
    // validate_entity bounds the length to 255.
    key.push(u8::try_from(entity.len()).unwrap_or(u8::MAX));
    key.extend_from_slice(entity.as_bytes());
    key
}

fn history_key(entity_prefix: &[u8], timestamp_ms: u64) -> Vec<u8> {
    let mut key = entity_prefix.to_vec();
    key.extend_from_slice(&timestamp_ms.to_be_bytes());
    key
}

impl Engine {
    fn save_positions(
        &self,
        batch: &[(Vec<u8>, PositionRecord)],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _guard = self
            .positions_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ms();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let expires = now.saturating_add(ttl_ms);
        // One value per key: a batch must not hold a key twice.
        let mut latest: HashMap<Vec<u8>, (u64, Vec<u8>)> = HashMap::new();
        let mut history: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (prefix, record) in batch {
            let p = &record.position;
            let key = latest_key(prefix, &p.entity);
            let stored_ts = match latest.get(&key) {
                Some((ts, _)) => Some(*ts),
                None => match self.positions_latest.get(&key).map_err(map_fjall)? {
                    Some(raw) => Some(StoredPosition::timestamp(&raw)?),
                    None => None,
                },
            };
            if stored_ts.is_none_or(|ts| p.timestamp_ms >= ts) {
                latest.insert(key, (p.timestamp_ms, encode(p, 0)));
            }
            let entity_prefix = history_prefix(prefix, &p.entity);
            history.insert(
                history_key(&entity_prefix, p.timestamp_ms),
                encode(p, expires),
            );
        }
        let mut write = self.db.batch();
        for (key, (_, value)) in latest {
            write.insert(&self.positions_latest, key, value);
        }
        for (key, value) in history {
            write.insert(&self.positions_history, key, value);
        }
        write.commit().map_err(map_fjall)
    }

    fn latest_positions(&self, prefix: &[u8], limit: usize) -> Result<Vec<Position>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(MAX_PREALLOCATED));
        for guard in self.positions_latest.prefix(prefix).take(limit) {
            let (_, value) = guard.into_inner().map_err(map_fjall)?;
            out.push(StoredPosition::decode(&value)?.position);
        }
        Ok(out)
    }

    fn position_history(
        &self,
        entity_prefix: &[u8],
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Position>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(MAX_PREALLOCATED));
        if limit == 0 {
            return Ok(out);
        }
        let now = now_ms();
        let first = history_key(entity_prefix, since_ms);
        let last = history_key(entity_prefix, u64::MAX);
        for guard in self.positions_history.range(first..=last).rev() {
            let (_, value) = guard.into_inner().map_err(map_fjall)?;
            let stored = StoredPosition::decode(&value)?;
            if StoredPosition::is_expired(stored.expires_at_ms, now) {
                continue;
            }
            out.push(stored.position);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl PositionStore for EmbeddedStore {
    async fn save_positions(
        &self,
        batch: Vec<PositionRecord>,
        history_ttl: Duration,
    ) -> Result<(), StoreError> {
        let prepared = batch
            .into_iter()
            .map(|record| {
                validate_record(&record)?;
                Ok((keys::channel_prefix(&record.channel)?, record))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if prepared.is_empty() {
            return Ok(());
        }
        let engine = self.engine.clone();
        blocking(move || engine.save_positions(&prepared, history_ttl)).await
    }

    async fn latest_positions(
        &self,
        channel: &ChannelKey,
        limit: usize,
    ) -> Result<Vec<Position>, StoreError> {
        let prefix = keys::channel_prefix(channel)?;
        let engine = self.engine.clone();
        blocking(move || engine.latest_positions(&prefix, limit)).await
    }

    async fn position_history(
        &self,
        channel: &ChannelKey,
        entity: &str,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Position>, StoreError> {
        validate_entity(entity)?;
        let prefix = history_prefix(&keys::channel_prefix(channel)?, entity);
        let engine = self.engine.clone();
        blocking(move || engine.position_history(&prefix, since_ms, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncations_are_corrupt() {
        let p = Position {
            entity: "truck-7".into(),
            lat: 52.5,
            lon: -13.25,
            accuracy: Some(4.0),
            heading: None,
            speed: Some(12.5),
            timestamp_ms: 1_700_000_000_000,
            user: "driver".into(),
        };
        let raw = encode(&p, 99);
        let stored = StoredPosition::decode(&raw).unwrap();
        assert_eq!((stored.expires_at_ms, stored.position), (99, p.clone()));
        assert_eq!(StoredPosition::timestamp(&raw).unwrap(), p.timestamp_ms);
        assert_eq!(StoredPosition::expiry(&raw).unwrap(), 99);
        let user_start = raw.len() - p.user.len();
        for cut in 0..user_start {
            assert!(StoredPosition::decode(&raw[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn history_keys_sort_by_time_within_an_entity() {
        let a = history_prefix(b"p", "a");
        let ab = history_prefix(b"p", "ab");
        assert!(!ab.starts_with(&a));
        assert!(history_key(&a, 255) < history_key(&a, 256));
    }
}
