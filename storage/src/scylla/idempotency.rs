//! Idempotency records: `idempotency ((tenant, channel, key)) -> seq, id,
//! ts`, written `USING TTL` equal to the window, beside the message rows.

use std::collections::HashMap;

use futures::future::try_join_all;

use super::Inner;
use super::db::{Failure, now_ms};
use super::log::{bucket, from_cql_ts, seq, to_cql_ts};
use crate::{Appended, ChannelKey, MessageId, NewMessage, Offset};

/// Keys per lookup query. One `IN` query replaces a round trip per key;
/// the coordinator fans it out to the keys' partitions, so keep it modest.
const KEYS_PER_QUERY: usize = 64;

/// A record as read: key, seq, id, ts.
type Record = (String, i64, Vec<u8>, i64);

impl Inner {
    /// Resolves the group's idempotency keys against the database. A record
    /// counts only if the message it names is there with the same id: a
    /// record whose message write failed (or was overwritten after a lease
    /// change) reads as absent.
    pub(crate) async fn lookup_keys(
        &self,
        key: &ChannelKey,
        calls: &[&[NewMessage]],
        head: Offset,
    ) -> Result<HashMap<String, Appended>, Failure> {
        let mut keys: Vec<&str> = calls
            .iter()
            .flat_map(|c| c.iter())
            .filter_map(|m| m.idempotency_key.as_deref())
            .collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        keys.sort_unstable();
        keys.dedup();
        let (t, c) = (&*key.tenant, &*key.channel);
        let pages = try_join_all(keys.chunks(KEYS_PER_QUERY).map(|chunk| {
            self.db
                .rows::<Record>(&self.db.st.idem_get_many, (t, c, chunk.to_vec()))
        }))
        .await?;
        // Hits are rare (retries), so checking each one costs little.
        let checked = try_join_all(
            pages
                .into_iter()
                .flatten()
                .map(|record| self.check_record(key, record, head)),
        )
        .await?;
        Ok(checked.into_iter().flatten().collect())
    }

    /// The outcome a record stands for, if its message is in the log.
    async fn check_record(
        &self,
        key: &ChannelKey,
        (idem, offset, id, ts): Record,
        head: Offset,
    ) -> Result<Option<(String, Appended)>, Failure> {
        let offset = u64::try_from(offset).unwrap_or(0);
        let Ok(id_bytes) = <[u8; 16]>::try_from(id.as_slice()) else {
            return Ok(None);
        };
        if offset == 0 || offset > head {
            return Ok(None);
        }
        let values = (&*key.tenant, &*key.channel, bucket(offset), seq(offset));
        let stored: Option<(Vec<u8>,)> = self.db.row(&self.db.st.message_id, values).await?;
        if stored.is_none_or(|(s,)| s != id) {
            return Ok(None);
        }
        let appended = Appended {
            offset,
            id: MessageId(u128::from_be_bytes(id_bytes)),
            timestamp_ms: from_cql_ts(ts),
            duplicate: true,
        };
        Ok(Some((idem, appended)))
    }

    /// Writes the records of the keyed rows, with the window as TTL.
    pub(crate) async fn write_idempotency(
        &self,
        key: &ChannelKey,
        rows: &[(Offset, &NewMessage)],
        write_ts: i64,
    ) -> Result<(), Failure> {
        let ttl = self.idempotency_ttl_secs();
        let (t, c) = (&*key.tenant, &*key.channel);
        try_join_all(rows.iter().filter_map(|(offset, m)| {
            let k = m.idempotency_key.as_deref()?;
            let ts = to_cql_ts(m.timestamp_ms);
            let values = (
                t,
                c,
                k,
                seq(*offset),
                m.id.0.to_be_bytes().to_vec(),
                ts,
                ttl,
                write_ts,
            );
            Some(async move { self.db.exec(&self.db.st.idem_put, values).await })
        }))
        .await?;
        Ok(())
    }

    /// Rewrites the records of the log's last `max_batch` messages. A group
    /// whose message write succeeded but whose record write failed left
    /// keys a retry would not find; this runs before a channel's first
    /// assignment after a lease change or a failure.
    pub(crate) async fn repair_tail(&self, key: &ChannelKey, head: Offset) -> Result<(), Failure> {
        if head == 0 {
            return Ok(());
        }
        let from = head.saturating_sub(self.config.max_batch as u64);
        let (t, c) = (&*key.tenant, &*key.channel);
        let window_ms =
            i64::try_from(self.config.idempotency_window.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        for b in bucket(from + 1)..=bucket(head) {
            let rows: Vec<(i64, Vec<u8>, i64, Option<String>)> =
                self.db.rows(&self.db.st.tail, (t, c, b, seq(from))).await?;
            for (offset, id, ts, idem) in rows {
                let Some(idem) = idem else { continue };
                // Age from the publish time; a timestamp from the far future
                // (or a wrapped one) keeps the whole window.
                let age = now.saturating_sub(ts).max(0);
                let ttl = i32::try_from(window_ms.saturating_sub(age) / 1000).unwrap_or(i32::MAX);
                if ttl <= 0 {
                    continue;
                }
                let write_ts = self.db.next_timestamp();
                let values = (t, c, idem.as_str(), offset, id, ts, ttl, write_ts);
                self.db.exec(&self.db.st.idem_put, values).await?;
            }
        }
        Ok(())
    }
}
