//! The embedded store: a [`MessageLog`], [`KeyValueStore`](crate::KeyValueStore),
//! [`PluginRegistry`](crate::PluginRegistry) and
//! [`PositionStore`](crate::PositionStore) in a local fjall database, for
//! single-node deployments and tests.
//!
//! - `keys.rs`: the tenant-scoped key layout;
//! - `codec.rs`: the versioned value formats;
//! - `writer.rs` and `group.rs`: the writer thread and its group commit;
//! - `sweep.rs`: expiry of idempotency records, key-value data and position
//!   history;
//! - `engine.rs`: the fjall handles and the read paths;
//! - `kv.rs`, `registry.rs` and `records.rs`: plugin key-value data and the
//!   plugin registry, written outside the writer thread (see `kv.rs`);
//! - `positions.rs`: latest positions and position history, also written
//!   outside the writer thread.
//!
//! Appends go through one writer thread, which commits every call queued
//! meanwhile as one atomic batch with one fsync. Reads do not involve the
//! writer: fjall handles are thread-safe, so each read runs directly on
//! tokio's blocking pool (a range scan can touch disk, which must not stall
//! a runtime worker), and a slow fsync never delays readers.

mod codec;
mod config;
mod engine;
mod group;
mod keys;
mod kv;
mod positions;
mod records;
mod registry;
mod sweep;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

pub use config::EmbeddedConfig;
pub use keys::{MAX_IDEMPOTENCY_KEY_BYTES, MAX_NAME_BYTES};

use self::engine::Engine;
use self::group::{Prepared, PreparedEdit};
use self::writer::{Command, Fatal};
use crate::{
    Appended, ChannelKey, MessageLog, NewMessage, Offset, ReadRange, StoreError, StoredMessage,
};

/// A [`MessageLog`] stored in a local fjall database.
///
/// Dropping the store finishes the appends already queued, flushes, and
/// waits for the writer thread to exit, so the same path can be reopened
/// right after. That wait is short (at most one group commit) but blocking;
/// call [`close`](Self::close) first to do it asynchronously.
pub struct EmbeddedStore {
    engine: Engine,
    /// To the writer thread. `None` only while dropping.
    tx: Option<mpsc::Sender<Command>>,
    /// Joined on drop, so the database lock is released when drop returns.
    writer: Option<JoinHandle<()>>,
    /// The write failure that made the engine refuse writes, if any.
    fatal: Fatal,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("failed", &self.fatal.get())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `config.path` and starts its writer
    /// thread. Blocks while fjall recovers its journal; call it before
    /// serving traffic, or from `spawn_blocking`.
    pub fn open(config: EmbeddedConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let engine = Engine::open(&config.path)?;
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let fatal = Fatal::default();
        let writer = writer::spawn(engine.clone(), &config, rx, Arc::clone(&fatal))?;
        Ok(Self {
            engine,
            tx: Some(tx),
            writer: Some(writer),
            fatal,
            path: config.path,
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes the appends queued so far, flushes, and stops the writer
    /// thread. Later appends fail with [`StoreError::Closed`]; reads keep
    /// working until the store is dropped.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if let Some(tx) = &self.tx
            && tx.send(Command::Close { done }).await.is_ok()
        {
            // An error here means the writer already exited: also closed.
            let _ = finished.await;
        }
    }

    fn sender(&self) -> Result<&mpsc::Sender<Command>, StoreError> {
        if let Some(err) = self.fatal.get() {
            return Err(err.clone());
        }
        self.tx.as_ref().ok_or(StoreError::Closed)
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the channel tells the writer to finish and exit.
        self.tx = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the embedded store's writer thread panicked");
        }
    }
}

#[async_trait]
impl MessageLog for EmbeddedStore {
    async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Validate and encode here, in parallel across callers, so the
        // writer thread does only the serial part.
        let prepared = batch.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        let (reply, outcome) = oneshot::channel();
        self.sender()?
            .send(Command::Append {
                batch: prepared,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        // If this future is dropped now, the append still happens: callers
        // that retry must use an idempotency key, as with any lost ack.
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    async fn read(
        &self,
        channel: &ChannelKey,
        range: ReadRange,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let prefix = keys::channel_prefix(channel)?;
        let engine = self.engine.clone();
        blocking(move || engine.read(&prefix, range)).await
    }

    async fn head(&self, channel: &ChannelKey) -> Result<Offset, StoreError> {
        // The heads keyspace, not the writer's cache: it holds only durable
        // heads, and reading it needs no round trip through the writer.
        let prefix = keys::channel_prefix(channel)?;
        let engine = self.engine.clone();
        blocking(move || engine.head(&prefix)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // No I/O: the store is ready while its writer runs and fjall still
        // accepts writes. Disk reads would only measure the page cache.
        let tx = self.sender()?;
        if tx.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }
}

fn prepare(msg: &NewMessage) -> Result<Prepared, StoreError> {
    let prefix = keys::channel_prefix(&msg.channel)?;
    let idempotency_key = match &msg.idempotency_key {
        Some(key) => Some(keys::idempotency_key(&prefix, key)?),
        None => None,
    };
    Ok(Prepared {
        idempotency_key,
        id: msg.id,
        timestamp_ms: msg.timestamp_ms,
        value: codec::encode_message(msg)?,
        prefix,
        edit: msg.edit.map(|edit| PreparedEdit {
            edit,
            payload: msg.payload.clone(),
            headers: msg.headers.clone(),
        }),
    })
}

/// Runs a blocking read on tokio's blocking pool, or inline when called
/// outside a tokio runtime (so a foreign executor gets a slow read, not a
/// panic).
async fn blocking<T, F>(read: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(read).await.unwrap_or_else(|err| {
            if err.is_cancelled() {
                Err(StoreError::Closed)
            } else {
                Err(StoreError::Io(format!("a storage read panicked: {err}")))
            }
        }),
        Err(_) => read(),
    }
}

#[cfg(test)]
mod tests;
