//! Writing one group of a channel: lease check, head, idempotency, offsets,
//! and the writes themselves.

use std::time::Instant;

use scylla::serialize::SerializationError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::MaybeUnset;

use super::Inner;
use super::db::{Failure, unavailable};
use super::edits::{Content, EditPlan, Rewrite};
use super::log::{bucket, kind_code, seq, state_code, to_cql_ts};
use super::sequencer::SeqState;
use crate::{Appended, ChannelKey, ItemState, NewMessage, Offset, StoreError};

/// One unlogged batch carries at most about this many bytes of rows. Batches of
/// one partition are applied atomically, but databases refuse large ones
/// (Cassandra's `batch_size_fail_threshold` is 50 KiB by default).
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// A message row: tenant, channel, bucket, seq, id, ts, sender, headers,
/// payload, idem_key, epoch, edit_target, edit_kind, state, TTL, write
/// timestamp. The edit columns are unset (not null, which would write a
/// tombstone) on plain messages.
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
    MaybeUnset<i64>,
    MaybeUnset<i8>,
    MaybeUnset<i8>,
    i32,
    i64,
);

/// A rewrite of an earlier item: TTL, write timestamp, payload, headers,
/// state, then the key: tenant, channel, bucket, seq.
type RewriteRow<'a> = (
    i32,
    i64,
    &'a [u8],
    Vec<(&'a str, &'a str)>,
    MaybeUnset<i8>,
    &'a str,
    &'a str,
    i64,
    i64,
);

/// One statement's values in a batch of message inserts and rewrites.
enum BatchRow<'a> {
    Insert(MessageRow<'a>),
    Rewrite(RewriteRow<'a>),
}

impl SerializeRow for BatchRow<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        match self {
            BatchRow::Insert(row) => row.serialize(ctx, writer),
            BatchRow::Rewrite(row) => row.serialize(ctx, writer),
        }
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// A new message row to write: its offset, the message, and the content
/// and state it is written with (an edit of the same group may have
/// changed them).
struct NewRow<'a> {
    offset: Offset,
    msg: &'a NewMessage,
    content: Content<'a>,
    state: ItemState,
}

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
        let plan = self.plan_edits(key, head, &new_rows).await?;
        let write_ts = self.db.next_timestamp();
        let (messages, idempotency) = tokio::join!(
            self.write_messages(key, &new_rows, &plan, lease.epoch, write_ts),
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
    ///
    /// The rewrite of an earlier item an edit changed goes in the batch of
    /// the edit record. When the item lies in another bucket, that batch is
    /// a logged one, which the database applies entirely or not at all
    /// across partitions (at the cost of a batch-log write; edits are rare).
    async fn write_messages(
        &self,
        key: &ChannelKey,
        rows: &[(Offset, &NewMessage)],
        plan: &EditPlan<'_>,
        epoch: i64,
        write_ts: i64,
    ) -> Result<(), Failure> {
        let ttl = self.message_ttl_secs();
        let rows: Vec<NewRow<'_>> = rows
            .iter()
            .map(|&(offset, msg)| {
                let (content, state) = plan
                    .overrides
                    .get(&offset)
                    .copied()
                    .unwrap_or((Content::of(msg), ItemState::Original));
                NewRow {
                    offset,
                    msg,
                    content,
                    state,
                }
            })
            .collect();
        let rewrites_with = |offset: Offset| plan.rewrites.iter().filter(move |r| r.with == offset);
        let size = |row: &NewRow<'_>| {
            row_bytes(key, row.msg, row.content)
                + rewrites_with(row.offset)
                    .map(|r| rewrite_bytes(key, r))
                    .sum::<usize>()
        };
        let mut start = 0;
        while start < rows.len() {
            let first_bucket = bucket(rows[start].offset);
            let mut end = start;
            let mut bytes = 0;
            while end < rows.len()
                && bucket(rows[end].offset) == first_bucket
                && (end == start || bytes + size(&rows[end]) <= MAX_BATCH_BYTES)
            {
                bytes += size(&rows[end]);
                end += 1;
            }
            let mut values: Vec<BatchRow<'_>> = Vec::with_capacity(end - start);
            let mut logged = false;
            for row in &rows[start..end] {
                values.push(BatchRow::Insert(message_row(
                    key, row, epoch, ttl, write_ts,
                )));
                for rewrite in rewrites_with(row.offset) {
                    logged |= bucket(rewrite.target) != first_bucket;
                    values.push(BatchRow::Rewrite(rewrite_row(key, rewrite, write_ts)));
                }
            }
            if let [BatchRow::Insert(row)] = values.as_slice() {
                self.db.exec(&self.db.st.insert_message, row).await?;
            } else {
                let kind = if logged {
                    BatchType::Logged
                } else {
                    BatchType::Unlogged
                };
                let mut batch = Batch::new(kind);
                for value in &values {
                    batch.append_statement(match value {
                        BatchRow::Insert(_) => self.db.st.insert_message.clone(),
                        BatchRow::Rewrite(_) => self.db.st.rewrite_message.clone(),
                    });
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

fn unset_if_none<T>(value: Option<T>) -> MaybeUnset<T> {
    value.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

fn headers_of(content: Content<'_>) -> Vec<(&str, &str)> {
    content
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

fn message_row<'a>(
    key: &'a ChannelKey,
    row: &NewRow<'a>,
    epoch: i64,
    ttl: i32,
    write_ts: i64,
) -> MessageRow<'a> {
    let m = row.msg;
    (
        &key.tenant,
        &key.channel,
        bucket(row.offset),
        seq(row.offset),
        m.id.0.to_be_bytes(),
        to_cql_ts(m.timestamp_ms),
        &m.sender,
        headers_of(row.content),
        row.content.payload,
        m.idempotency_key.as_deref(),
        epoch,
        unset_if_none(m.edit.map(|e| seq(e.target))),
        unset_if_none(m.edit.map(|e| kind_code(e.kind))),
        unset_if_none(state_code(row.state)),
        ttl,
        write_ts,
    )
}

fn rewrite_row<'a>(key: &'a ChannelKey, r: &Rewrite<'a>, write_ts: i64) -> RewriteRow<'a> {
    (
        r.ttl,
        write_ts,
        r.content.payload,
        headers_of(r.content),
        unset_if_none(state_code(r.state)),
        &key.tenant,
        &key.channel,
        bucket(r.target),
        seq(r.target),
    )
}

/// About how many bytes a message row adds to a batch: every column, plus
/// a fixed allowance for the key, clustering and cell overhead.
fn row_bytes(key: &ChannelKey, m: &NewMessage, content: Content<'_>) -> usize {
    let idem = m.idempotency_key.as_deref().map_or(0, str::len);
    key.tenant.len() + key.channel.len() + m.sender.len() + content_bytes(content) + idem + 96
}

fn rewrite_bytes(key: &ChannelKey, r: &Rewrite<'_>) -> usize {
    key.tenant.len() + key.channel.len() + content_bytes(r.content) + 64
}

fn content_bytes(content: Content<'_>) -> usize {
    let headers: usize = content
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 8)
        .sum();
    content.payload.len() + headers
}
