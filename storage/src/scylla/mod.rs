//! The ScyllaDB backend: [`MessageLog`], [`KeyValueStore`](crate::KeyValueStore),
//! [`PluginRegistry`](crate::PluginRegistry) and
//! [`PositionStore`](crate::PositionStore) in a CQL database shared by
//! every gateway node (ScyllaDB in production; Apache Cassandra speaks the
//! same protocol and runs the tests, see `deploy/cql-node.sh`).
//!
//! - `config.rs` and `url.rs`: [`ScyllaConfig`] and the `scylla://` URL;
//! - `schema.rs` and `../schema.cql`: the tables, created on connect;
//! - `statements.rs`: every prepared statement and its retry/consistency;
//! - `db.rs`: the in-flight limit, write timestamps, error mapping;
//! - `lease.rs`: who assigns a channel's offsets;
//! - `sequencer.rs` and `group.rs`: per-channel group commit;
//! - `edits.rs`: what edit records rewrite in place;
//! - `idempotency.rs`: idempotency records;
//! - `log.rs`: buckets, the durable head, reads;
//! - `kv.rs`, `registry.rs`: plugin data;
//! - `positions.rs`: latest positions and position history.
//!
//! `storage/README.md` explains the design and why it keeps offsets
//! gap-free with several gateway nodes.

mod config;
mod db;
mod edits;
mod group;
mod idempotency;
mod kv;
mod lease;
mod log;
mod positions;
mod registry;
mod schema;
mod sequencer;
mod statements;
mod url;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;

pub use config::ScyllaConfig;
pub use log::BUCKET_SIZE;
pub use schema::{SCHEMA_CQL, apply_schema, is_already_applied, schema_statements};

use self::db::Db;
use self::sequencer::Channels;
use crate::{
    Appended, ChannelKey, MessageLog, NewMessage, Offset, ReadRange, StoreError, StoredMessage,
    validate_channel, validate_idempotency_key,
};

/// Store backed by a ScyllaDB (or Cassandra) cluster. Cheap to clone: the
/// clones share one session and one in-flight limit.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: Db,
    config: ScyllaConfig,
    /// This process's name in lease rows: `node_id/incarnation`, so a
    /// restarted node does not mistake its previous run's lease for its own.
    owner: String,
    channels: Channels,
    /// Striped locks that queue one node's increments of a key.
    kv_locks: Vec<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("nodes", &self.inner.config.nodes)
            .field("keyspace", &self.inner.config.keyspace)
            .field("owner", &self.inner.owner)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Connects, creates the keyspace and tables if missing, and prepares
    /// every statement. Fails with `Unavailable` when no node answers.
    pub async fn connect(config: ScyllaConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let session = schema::open_session(&config).await?;
        schema::apply(&session, &config).await?;
        let st = statements::Statements::prepare(&session, &config).await?;
        let db = Db::new(session, st, config.max_in_flight, config.request_timeout);
        let owner = format!("{}/{:x}", config.node_id, incarnation());
        tracing::info!(nodes = ?config.nodes, keyspace = %config.keyspace, %owner, "connected to the CQL database");
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                owner,
                channels: Channels::default(),
                kv_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            }),
        })
    }

    /// [`connect`](Self::connect), retrying with exponential backoff (0.5 s
    /// doubling to 30 s) while the database is unreachable, and logging each
    /// failed attempt. Gives up after `give_up_after` (never when `None`)
    /// and at once on errors a retry cannot fix (bad config, schema refused).
    pub async fn connect_with_retry(
        config: ScyllaConfig,
        give_up_after: Option<Duration>,
    ) -> Result<Self, StoreError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(500);
        for attempt in 1u32.. {
            match Self::connect(config.clone()).await {
                Ok(store) => return Ok(store),
                Err(err) if err.is_retryable() => {
                    let out_of_time =
                        give_up_after.is_some_and(|limit| started.elapsed() + delay > limit);
                    if out_of_time {
                        return Err(err);
                    }
                    tracing::warn!(attempt, error = %err, retry_in = ?delay, nodes = ?config.nodes,
                        "the CQL database is not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Closed)
    }

    /// The configuration this store runs with.
    pub fn config(&self) -> &ScyllaConfig {
        &self.inner.config
    }

    /// Releases every channel lease this store holds, so other nodes can
    /// take the channels at once instead of after `lease_ttl`. Call it on
    /// graceful shutdown; later appends take leases again.
    pub async fn close(&self) {
        for (key, channel) in self.inner.held_leases() {
            let mut state = channel.lock_state().await;
            if let Some(lease) = state.lease.take() {
                let head = state.head.unwrap_or(lease.head_hint);
                self.inner.release(&key, &lease, head).await;
            }
            state.head = None;
        }
    }
}

/// A per-process number that tells runs of one node apart.
fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

fn check_message(msg: &NewMessage) -> Result<(), StoreError> {
    validate_channel(&msg.channel)?;
    msg.idempotency_key
        .as_deref()
        .map_or(Ok(()), validate_idempotency_key)
}

#[async_trait]
impl MessageLog for ScyllaStore {
    async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        // Validate all first: an invalid message fails the call before any write.
        batch.iter().try_for_each(check_message)?;
        // Split by channel, remembering each message's input position.
        let mut groups: Vec<(ChannelKey, Vec<usize>, Vec<NewMessage>)> = Vec::new();
        for (index, msg) in batch.into_iter().enumerate() {
            match groups.iter_mut().find(|(k, ..)| *k == msg.channel) {
                Some((_, positions, messages)) => {
                    positions.push(index);
                    messages.push(msg);
                }
                None => groups.push((msg.channel.clone(), vec![index], vec![msg])),
            }
        }
        let total: usize = groups.iter().map(|(_, p, _)| p.len()).sum();
        let results = try_join_all(groups.into_iter().map(
            |(key, positions, messages)| async move {
                let outcomes = sequencer::submit(&self.inner, &key, messages).await?;
                Ok::<_, StoreError>(positions.into_iter().zip(outcomes))
            },
        ))
        .await?;
        let mut out = vec![None; total];
        for (index, outcome) in results.into_iter().flatten() {
            out[index] = Some(outcome);
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Backend("an append outcome went missing".into())))
            .collect()
    }

    async fn read(
        &self,
        channel: &ChannelKey,
        range: ReadRange,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        validate_channel(channel)?;
        self.inner.read_range(channel, range).await
    }

    async fn head(&self, channel: &ChannelKey) -> Result<Offset, StoreError> {
        validate_channel(channel)?;
        Ok(self.inner.durable_head(channel).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let db = &self.inner.db;
        db.exec(&db.st.ping, ()).await?;
        Ok(())
    }
}
