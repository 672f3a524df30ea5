//! Writing one group of a channel: lease check, head, idempotency, offsets,
//! and the writes themselves.

use std::time::Instant;

use scylla::statement::batch::{Batch, BatchType};

use super::Inner;
use super::db::{Failure, unavailable};
use super::log::{bucket, seq, to_cql_ts};
use super::sequencer::SeqState;
use crate::{Appended, ChannelKey, NewMessage, Offset, StoreError};

/// One unlogged batch carries at most about this many bytes of rows. Batches of
/// one partition are applied atomically, but databases refuse large ones
/// (Cassandra's `batch_size_fail_threshold` is 50 KiB by default).
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// A message row: tenant, channel, bucket, seq, id, ts, sender, headers,
/// payload, idem_key, epoch, TTL, write timestamp.
type MessageRow<'a> = (
    &'a str,
    &'a str,
    i64,
    i64,
    [u8; 16],
    i64,
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a [u8],
    Option<&'a str>,
    i64,
    i32,
    i64,
);

impl Inner {
    /// Writes one group and returns one outcome list per call. On `Err`,
    /// the caller resets the head; nothing of the group is acked.
    pub(crate) async fn write_group(
        &self,
        key: &ChannelKey,
        state: &mut SeqState,
        calls: &[&[NewMessage]],
    ) -> Result<Vec<Vec<Appended>>, Failure> {
        if let Some(until) = state.cooldown_until {
            let now = Instant::now();
            if now < until {
                return Err(Failure {
                    error: StoreError::Unavailable {
                        reason: "a recent write to this channel has an unknown outcome; \
                                 waiting for it to settle"
                            .into(),
                        retry_after: until - now,
                    },
                    ambiguous: false,
                });
            }
            state.cooldown_until = None;
        }
        self.ensure_lease(key, state).await?;
        let (Some(lease), head) = (state.lease, state.head) else {
            return Err(unavailable("lost the channel lease").into());
        };
        let head = match head {
            Some(head) => head,
            None => {
                let head = self.probe_head(key, lease.head_hint).await?;
                self.repair_tail(key, head).await?;
                state.head = Some(head);
                head
            }
        };

        let mut resolved = self.lookup_keys(key, calls, head).await?;
        let mut next = head;
        let mut new_rows: Vec<(Offset, &NewMessage)> = Vec::new();
        let mut outcomes = Vec::with_capacity(calls.len());
        for call in calls {
            let mut out = Vec::with_capacity(call.len());
            for msg in call.iter() {
                let idem = msg.idempotency_key.as_deref();
                if let Some(earlier) = idem.and_then(|k| resolved.get(k)) {
                    out.push(*earlier);
                    continue;
                }
                next += 1;
                let appended = Appended {
                    offset: next,
                    id: msg.id,
                    timestamp_ms: msg.timestamp_ms,
                    duplicate: false,
                };
                if let Some(k) = idem {
                    resolved.insert(
                        k.to_owned(),
                        Appended {
                            duplicate: true,
                            ..appended
                        },
                    );
                }
                new_rows.push((next, msg));
                out.push(appended);
            }
            outcomes.push(out);
        }
        if new_rows.is_empty() {
            return Ok(outcomes);
        }
        let write_ts = self.db.next_timestamp();
        let (messages, idempotency) = tokio::join!(
            self.write_messages(key, &new_rows, lease.epoch, write_ts),
            self.write_idempotency(key, &new_rows, write_ts),
        );
        messages?;
        idempotency?;
        // A write that finished after the lease may have ended cannot be
        // acked: a new owner may already be writing the same offsets.
        if Instant::now() >= lease.valid_until {
            state.lease = None;
            return Err(unavailable("the channel lease ran out during the write").into());
        }
        state.head = Some(next);
        Ok(outcomes)
    }

    /// Makes sure this node holds a lease valid for at least half its TTL.
    async fn ensure_lease(&self, key: &ChannelKey, state: &mut SeqState) -> Result<(), Failure> {
        let half = self.config.lease_ttl / 2;
        if let Some(mut lease) = state.lease {
            if lease.renewed_at.elapsed() < half {
                return Ok(());
            }
            // Renewal works even after local expiry: if it applies, the
            // epoch never moved, so no other node wrote in between.
            let hint = state.head.unwrap_or(lease.head_hint);
            if self.renew(key, &mut lease, hint).await? {
                if let Some(head) = state.head {
                    lease.head_hint = head;
                }
                state.lease = Some(lease);
                return Ok(());
            }
            state.lease = None;
            state.head = None;
        }
        let lease = self.acquire(key).await?;
        state.lease = Some(lease);
        state.head = None;
        Ok(())
    }

    /// Writes the rows in offset order: one unlogged batch per run of rows
    /// in one bucket (atomic within its partition), split further by size,
    /// each started only after the previous one succeeded. A failure thus
    /// leaves a contiguous prefix written, never a hole.
    async fn write_messages(
        &self,
        key: &ChannelKey,
        rows: &[(Offset, &NewMessage)],
        epoch: i64,
        write_ts: i64,
    ) -> Result<(), Failure> {
        let ttl = self.message_ttl_secs();
        let mut start = 0;
        while start < rows.len() {
            let first_bucket = bucket(rows[start].0);
            let mut end = start;
            let mut bytes = 0;
            while end < rows.len()
                && bucket(rows[end].0) == first_bucket
                && (end == start || bytes + row_bytes(key, rows[end].1) <= MAX_BATCH_BYTES)
            {
                bytes += row_bytes(key, rows[end].1);
                end += 1;
            }
            let values: Vec<MessageRow<'_>> = rows[start..end]
                .iter()
                .map(|(offset, m)| {
                    (
                        &*key.tenant,
                        &*key.channel,
                        bucket(*offset),
                        seq(*offset),
                        m.id.0.to_be_bytes(),
                        to_cql_ts(m.timestamp_ms),
                        &*m.sender,
                        m.headers
                            .iter()
                            .map(|h| (h.name.as_str(), h.value.as_str()))
                            .collect(),
                        m.payload.as_ref(),
                        m.idempotency_key.as_deref(),
                        epoch,
                        ttl,
                        write_ts,
                    )
                })
                .collect();
            if let [row] = values.as_slice() {
                self.db.exec(&self.db.st.insert_message, row).await?;
            } else {
                let mut batch = Batch::new(BatchType::Unlogged);
                for _ in &values {
                    batch.append_statement(self.db.st.insert_message.clone());
                }
                batch.set_consistency(self.config.consistency);
                batch.set_is_idempotent(true);
                self.db.batch(&batch, values).await?;
            }
            start = end;
        }
        Ok(())
    }
}

/// About how many bytes a message row adds to a batch: every column, plus
/// a fixed allowance for the key, clustering and cell overhead.
fn row_bytes(key: &ChannelKey, m: &NewMessage) -> usize {
    let headers: usize = m
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 8)
        .sum();
    let idem = m.idempotency_key.as_deref().map_or(0, str::len);
    key.tenant.len() + key.channel.len() + m.sender.len() + m.payload.len() + headers + idem + 96
}
