//! The read side of the message log: buckets, the durable head, paging,
//! and restoring idempotency records after a failure.
//!
//! Offsets are grouped into buckets of [`BUCKET_SIZE`]: offset `o` lives in
//! partition `(tenant, channel, (o - 1) / BUCKET_SIZE)`. Because offsets are
//! gap-free, buckets fill in order: a bucket has rows only if every earlier
//! bucket is full. The head is found by probing forward from a hint (an
//! offset known written, kept in the lease row) until a bucket is not full.

use std::sync::Arc;

use super::Inner;
use super::db::Failure;
use crate::{
    ChannelKey, Direction, Edit, EditKind, Header, ItemState, MessageId, Offset, ReadRange,
    StoreError, StoredMessage,
};

/// Offsets per partition. 16384 messages of 1 KiB make a 16 MiB partition,
/// well within what ScyllaDB handles comfortably, while a resuming
/// subscriber's read rarely spans two partitions. Changing it needs a data
/// migration: readers compute partitions from it.
pub const BUCKET_SIZE: u64 = 16_384;

/// Rows asked for per query when reading.
const PAGE: usize = 1000;

pub(crate) fn bucket(offset: Offset) -> i64 {
    i64::try_from(offset.saturating_sub(1) / BUCKET_SIZE).unwrap_or(i64::MAX)
}

/// Message timestamps are any `u64` the gateway chose; CQL has only signed
/// `bigint`, so they are stored bit for bit (values past `i64::MAX` read as
/// negative in cqlsh, and round trip exactly).
pub(crate) fn to_cql_ts(ts: u64) -> i64 {
    i64::from_ne_bytes(ts.to_ne_bytes())
}

pub(crate) fn from_cql_ts(ts: i64) -> u64 {
    u64::from_ne_bytes(ts.to_ne_bytes())
}

pub(crate) fn seq(offset: Offset) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// A read row: seq, id, ts, sender, headers, payload, edit_target,
/// edit_kind, state.
type ReadRow = (
    i64,
    Vec<u8>,
    i64,
    Option<String>,
    Option<Vec<(String, String)>>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<i8>,
    Option<i8>,
);

/// `edit_kind` column values.
pub(crate) fn kind_code(kind: EditKind) -> i8 {
    match kind {
        EditKind::Update => 1,
        EditKind::Delete => 2,
    }
}

/// `state` column values; an original item leaves the column unset (null).
pub(crate) fn state_code(state: ItemState) -> Option<i8> {
    match state {
        ItemState::Original => None,
        ItemState::Updated => Some(1),
        ItemState::Deleted => Some(2),
    }
}

pub(crate) fn state_of(offset: i64, code: Option<i8>) -> Result<ItemState, StoreError> {
    match code {
        None | Some(0) => Ok(ItemState::Original),
        Some(1) => Ok(ItemState::Updated),
        Some(2) => Ok(ItemState::Deleted),
        Some(other) => Err(StoreError::Corrupt {
            what: format!("message {offset} has an unknown state {other}"),
        }),
    }
}

fn edit_of(offset: i64, target: Option<i64>, kind: Option<i8>) -> Result<Option<Edit>, StoreError> {
    let kind = match kind {
        None => return Ok(None),
        Some(1) => EditKind::Update,
        Some(2) => EditKind::Delete,
        Some(other) => {
            return Err(StoreError::Corrupt {
                what: format!("message {offset} has an unknown edit kind {other}"),
            });
        }
    };
    let target = target.and_then(|t| u64::try_from(t).ok());
    match target {
        Some(target) => Ok(Some(Edit { target, kind })),
        None => Err(StoreError::Corrupt {
            what: format!("message {offset} is an edit without a valid target"),
        }),
    }
}

impl Inner {
    pub(crate) fn message_ttl_secs(&self) -> i32 {
        self.config.message_ttl.map_or(0, secs)
    }

    pub(crate) fn idempotency_ttl_secs(&self) -> i32 {
        secs(self.config.idempotency_window)
    }

    /// The last offset written to `key`, probing forward from `hint`.
    pub(crate) async fn probe_head(
        &self,
        key: &ChannelKey,
        hint: Offset,
    ) -> Result<Offset, Failure> {
        let (t, c) = (&*key.tenant, &*key.channel);
        let mut head = hint;
        let mut b = bucket(hint.max(1));
        loop {
            let last: Option<(i64,)> = self.db.row(&self.db.st.last_seq, (t, c, b)).await?;
            match last {
                Some((last,)) => head = head.max(u64::try_from(last).unwrap_or(0)),
                // The hint's bucket is empty only if a message TTL emptied
                // it: the head may lie in the next one, so look there too.
                None if hint > 0 => {
                    let next: Option<(i64,)> =
                        self.db.row(&self.db.st.last_seq, (t, c, b + 1)).await?;
                    if next.is_none() {
                        return Ok(head);
                    }
                    b += 1;
                    continue;
                }
                None => return Ok(head),
            }
            let bucket_end = (u64::try_from(b).unwrap_or(0) + 1) * BUCKET_SIZE;
            if head < bucket_end {
                return Ok(head);
            }
            b += 1;
        }
    }

    /// The durable head as any node sees it.
    pub(crate) async fn durable_head(&self, key: &ChannelKey) -> Result<Offset, Failure> {
        let hint: Option<(Option<i64>,)> = self
            .db
            .row(&self.db.st.lease_hint, (&*key.tenant, &*key.channel))
            .await?;
        let hint = hint.and_then(|(h,)| h).unwrap_or(0);
        self.probe_head(key, u64::try_from(hint).unwrap_or(0)).await
    }

    pub(crate) async fn read_range(
        self: &Arc<Self>,
        key: &ChannelKey,
        range: ReadRange,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let first = range
            .after
            .map_or(Some(1), |a| a.checked_add(1))
            .map(|f| f.max(1));
        let last = range.before.map_or(Some(u64::MAX), |b| b.checked_sub(1));
        let (Some(mut first), Some(last)) = (first, last) else {
            return Ok(Vec::new());
        };
        if range.limit == 0 || first > last {
            return Ok(Vec::new());
        }
        // Bound by the head so a read never walks empty buckets.
        let mut last = last.min(self.durable_head(key).await?);
        let mut out = Vec::new();
        let (t, c) = (&*key.tenant, &*key.channel);
        while first <= last && out.len() < range.limit {
            let want = (range.limit - out.len()).min(PAGE);
            let (b, statement) = match range.direction {
                Direction::Forward => (bucket(first), &self.db.st.read_forward),
                Direction::Backward => (bucket(last), &self.db.st.read_backward),
            };
            let limit = i32::try_from(want).unwrap_or(i32::MAX);
            let values = (t, c, b, seq(first - 1), seq(last).saturating_add(1), limit);
            let rows: Vec<ReadRow> = self.db.rows(statement, values).await?;
            let got = rows.len();
            for row in rows {
                out.push(decode(row)?);
            }
            let bucket_first = u64::try_from(b).unwrap_or(0) * BUCKET_SIZE + 1;
            match (range.direction, out.last()) {
                // A short page means this bucket is done: move to the next.
                (Direction::Forward, Some(m)) if got == want => first = m.offset + 1,
                (Direction::Forward, _) => first = bucket_first + BUCKET_SIZE,
                (Direction::Backward, Some(m)) if got == want => last = m.offset.saturating_sub(1),
                (Direction::Backward, _) => match bucket_first.checked_sub(1) {
                    Some(prev) if prev > 0 => last = prev,
                    _ => break,
                },
            }
        }
        Ok(out)
    }
}

fn decode(row: ReadRow) -> Result<StoredMessage, StoreError> {
    let (offset, id, ts, sender, headers, payload, edit_target, edit_kind, state) = row;
    let id = <[u8; 16]>::try_from(id.as_slice()).map_err(|_| StoreError::Corrupt {
        what: format!(
            "message {offset} has an id of {} bytes instead of 16",
            id.len()
        ),
    })?;
    Ok(StoredMessage {
        offset: u64::try_from(offset).unwrap_or(0),
        id: MessageId(u128::from_be_bytes(id)),
        timestamp_ms: from_cql_ts(ts),
        sender: sender.unwrap_or_default().into(),
        payload: payload.unwrap_or_default().into(),
        headers: headers
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        edit: edit_of(offset, edit_target, edit_kind)?,
        state: state_of(offset, state)?,
    })
}

/// A CQL TTL in whole seconds (at least 1, so a short duration is not 0,
/// which would mean "never").
fn secs(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}
