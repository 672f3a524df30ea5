//! [`PositionStore`] on ScyllaDB: `positions_latest ((tenant, channel),
//! entity)` and `positions_history ((tenant, channel, entity), ts DESC)`.
//!
//! - **Latest** rows are written `USING TIMESTAMP` = the fix's time in
//!   microseconds. The database keeps, cell by cell, the write with the
//!   highest timestamp, so an older fix never replaces a newer one, in
//!   whatever order fixes arrive and from whichever gateway node, without a
//!   read. Missing optional values are written as nulls, so a newer fix
//!   without an accuracy clears an older one's.
//! - **History** rows are written `USING TTL` = the history TTL, rounded up
//!   to whole seconds (CQL's granularity), with missing values left unset.
//! - **A batch** of records: the latest rows of one channel share a
//!   partition and go in unlogged single-partition batches; history rows
//!   (one partition per entity) are single inserts. Everything runs with
//!   bounded concurrency, each request token-aware and within the store's
//!   in-flight limit.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::MaybeUnset;

use super::ScyllaStore;
use super::db::Failure;
use crate::positions::{validate_entity, validate_record};
use crate::{ChannelKey, Position, PositionRecord, PositionStore, StoreError, validate_channel};

/// Requests of one `save_positions` call in flight at once.
const CONCURRENCY: usize = 16;

/// Latest rows per unlogged batch: small enough to stay well under the
/// database's batch size limits (a row is about 100 bytes).
const LATEST_PER_BATCH: usize = 100;

/// A latest row: tenant, channel, entity, lat, lon, accuracy, heading,
/// speed, ts, user_id, write timestamp.
type LatestRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    &'a str,
    i64,
);

/// A read row: entity, lat, lon, accuracy, heading, speed, ts, user_id.
type PositionRow = (
    String,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    Option<String>,
);

/// `validate_record` bounds timestamps to `i64::MAX / 1000`.
fn cql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn latest_row(record: &PositionRecord) -> LatestRow<'_> {
    let p = &record.position;
    let ts = cql_ms(p.timestamp_ms);
    (
        &record.channel.tenant,
        &record.channel.channel,
        &p.entity,
        p.lat,
        p.lon,
        p.accuracy,
        p.heading,
        p.speed,
        ts,
        &p.user,
        ts.saturating_mul(1000),
    )
}

fn decode(row: PositionRow) -> Position {
    let (entity, lat, lon, accuracy, heading, speed, ts, user) = row;
    Position {
        entity: entity.into(),
        lat,
        lon,
        accuracy,
        heading,
        speed,
        timestamp_ms: u64::try_from(ts).unwrap_or(0),
        user: user.unwrap_or_default().into(),
    }
}

/// A CQL TTL: whole seconds, rounded up, at least 1.
fn ttl_secs(ttl: Duration) -> i32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

fn limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl PositionStore for ScyllaStore {
    async fn save_positions(
        &self,
        batch: Vec<PositionRecord>,
        history_ttl: Duration,
    ) -> Result<(), StoreError> {
        batch.iter().try_for_each(validate_record)?;
        let db = &self.inner.db;
        let ttl = ttl_secs(history_ttl);
        let mut by_channel: HashMap<&ChannelKey, Vec<&PositionRecord>> = HashMap::new();
        for record in &batch {
            by_channel.entry(&record.channel).or_default().push(record);
        }
        let latest = by_channel
            .into_values()
            .flat_map(|records| {
                records
                    .chunks(LATEST_PER_BATCH)
                    .map(<[_]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .map(|chunk| async move {
                let rows: Vec<LatestRow<'_>> = chunk.iter().map(|r| latest_row(r)).collect();
                if let [row] = rows.as_slice() {
                    db.exec(&db.st.position_latest_put, row).await?;
                    return Ok::<_, Failure>(());
                }
                let mut statement = Batch::new(BatchType::Unlogged);
                for _ in &rows {
                    statement.append_statement(db.st.position_latest_put.clone());
                }
                statement.set_consistency(self.inner.config.consistency);
                statement.set_is_idempotent(true);
                db.batch(&statement, rows).await?;
                Ok(())
            });
        let history = batch.iter().map(|record| async move {
            let p = &record.position;
            let set = |v: Option<f64>| v.map_or(MaybeUnset::Unset, MaybeUnset::Set);
            let values = (
                &*record.channel.tenant,
                &*record.channel.channel,
                &*p.entity,
                cql_ms(p.timestamp_ms),
                p.lat,
                p.lon,
                set(p.accuracy),
                set(p.heading),
                set(p.speed),
                &*p.user,
                ttl,
            );
            db.exec(&db.st.position_history_put, values).await?;
            Ok::<_, Failure>(())
        });
        // Boxed so the two kinds of request share one stream.
        let requests: Vec<futures::future::BoxFuture<'_, Result<(), Failure>>> = latest
            .map(|f| Box::pin(f) as _)
            .chain(history.map(|f| Box::pin(f) as _))
            .collect();
        stream::iter(requests)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn latest_positions(
        &self,
        channel: &ChannelKey,
        limit_rows: usize,
    ) -> Result<Vec<Position>, StoreError> {
        validate_channel(channel)?;
        if limit_rows == 0 {
            return Ok(Vec::new());
        }
        let db = &self.inner.db;
        let values = (&*channel.tenant, &*channel.channel, limit(limit_rows));
        let rows: Vec<PositionRow> = db.rows_paged(&db.st.positions_latest, values).await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    async fn position_history(
        &self,
        channel: &ChannelKey,
        entity: &str,
        since_ms: u64,
        limit_rows: usize,
    ) -> Result<Vec<Position>, StoreError> {
        validate_channel(channel)?;
        validate_entity(entity)?;
        if limit_rows == 0 {
            return Ok(Vec::new());
        }
        let db = &self.inner.db;
        let since = cql_ms(since_ms);
        let values = (
            &*channel.tenant,
            &*channel.channel,
            entity,
            since,
            limit(limit_rows),
        );
        let rows: Vec<PositionRow> = db.rows_paged(&db.st.positions_history, values).await?;
        Ok(rows.into_iter().map(decode).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(3)), 3);
    }
}
