//! The writer thread: the only code that writes to the database.
//!
//! One OS thread (not a tokio task) because every group ends in an fsync
//! that blocks for milliseconds; a dedicated thread keeps that off the
//! runtime and makes "one writer" a structural fact rather than a lock.
//! While it fsyncs, new calls queue up in the channel, and the next group
//! takes them all: the busier the store, the more calls share one fsync.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use fjall::PersistMode;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::config::EmbeddedConfig;
use super::engine::{Engine, map_fjall};
use super::group::{self, HeadCache, Prepared};
use super::sweep::Sweeper;
use crate::{Appended, StoreError};

/// What the store sends to the writer thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// One `append` call, answered once its group is durable (or failed).
    Append {
        batch: Vec<Prepared>,
        reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
    },
    /// Finish the calls queued before this one, flush, and exit.
    Close { done: oneshot::Sender<()> },
}

/// Set once, by the writer, when a write to disk failed. fjall then refuses
/// every later write, so `ping` reports the store as not ready.
pub(crate) type Fatal = Arc<OnceLock<StoreError>>;

struct Writer {
    engine: Engine,
    rx: mpsc::Receiver<Command>,
    cache: HeadCache,
    sweeper: Sweeper,
    fatal: Fatal,
    window_ms: u64,
    max_batch: usize,
    max_group_bytes: usize,
    /// A call taken off the queue that did not fit in the previous group.
    carry: Option<Command>,
}

/// Starts the writer thread. It exits after a `Close` command or once every
/// sender is dropped, in both cases after finishing the calls queued before.
pub(crate) fn spawn(
    engine: Engine,
    config: &EmbeddedConfig,
    rx: mpsc::Receiver<Command>,
    fatal: Fatal,
) -> Result<JoinHandle<()>, StoreError> {
    let window_ms = u64::try_from(config.idempotency_window.as_millis()).unwrap_or(u64::MAX);
    let writer = Writer {
        engine,
        rx,
        cache: HeadCache::default(),
        sweeper: Sweeper::new(config.sweep_interval, window_ms),
        fatal,
        window_ms,
        max_batch: config.max_batch,
        max_group_bytes: config.max_group_bytes,
        carry: None,
    };
    std::thread::Builder::new()
        .name("quiver-storage-writer".into())
        .spawn(move || writer.run())
        .map_err(|e| StoreError::Io(format!("cannot start the storage writer thread: {e}")))
}

impl Writer {
    fn run(mut self) {
        let done = loop {
            let Some(first) = self.next_command() else {
                break None;
            };
            let (calls, close) = self.drain(first);
            self.commit(calls);
            if close.is_some() {
                break close;
            }
            self.sweeper.start_if_due();
            // One sweep chunk between groups, so sweeping progresses under load.
            self.sweeper.step(&self.engine);
        };
        // Groups are fsynced already; this persists sweep deletes.
        if let Err(err) = self
            .engine
            .db
            .persist(PersistMode::SyncAll)
            .map_err(map_fjall)
        {
            tracing::warn!(error = %err, "final flush of the embedded store failed");
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// The next call to serve, sweeping while the queue is empty and a sweep
    /// is under way. `None` once every sender is gone.
    fn next_command(&mut self) -> Option<Command> {
        if let Some(carried) = self.carry.take() {
            return Some(carried);
        }
        while self.sweeper.active() {
            match self.rx.try_recv() {
                Ok(command) => return Some(command),
                Err(TryRecvError::Empty) => self.sweeper.step(&self.engine),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
        self.rx.blocking_recv()
    }

    /// Takes `first` plus every call already queued, up to the group limits.
    /// Returns the calls and, if a `Close` was reached, its reply channel.
    fn drain(&mut self, first: Command) -> (Vec<Call>, Option<oneshot::Sender<()>>) {
        let mut calls = Vec::new();
        let (mut messages, mut bytes) = (0usize, 0usize);
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Close { done } => return (calls, Some(done)),
                Command::Append { batch, reply } => {
                    let size: usize = batch.iter().map(|m| m.value.len()).sum();
                    let fits = messages + batch.len() <= self.max_batch
                        && bytes.saturating_add(size) <= self.max_group_bytes;
                    if !calls.is_empty() && !fits {
                        self.carry = Some(Command::Append { batch, reply });
                        break;
                    }
                    messages += batch.len();
                    bytes = bytes.saturating_add(size);
                    calls.push(Call { batch, reply });
                }
            }
            if messages < self.max_batch && bytes < self.max_group_bytes {
                next = self.rx.try_recv().ok();
            }
        }
        (calls, None)
    }

    fn commit(&mut self, calls: Vec<Call>) {
        if calls.is_empty() {
            return;
        }
        let (batches, replies): (Vec<_>, Vec<_>) =
            calls.into_iter().map(|c| (c.batch, c.reply)).unzip();
        let (results, write_error) =
            group::commit(&self.engine, &mut self.cache, self.window_ms, batches);
        if let Some(err) = write_error {
            tracing::error!(error = %err, "embedded store write failed; refusing writes from now on");
            let _ = self.fatal.set(err);
        }
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have given up waiting; the outcome stands anyway.
            let _ = reply.send(result);
        }
    }
}

/// One queued `append` call.
struct Call {
    batch: Vec<Prepared>,
    reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}
