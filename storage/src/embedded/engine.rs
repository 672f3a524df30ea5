//! The fjall database and its keyspaces, plus the read paths. Reads
//! need no writer thread: fjall handles are thread-safe and a reader only
//! ever sees whole, already-fsynced group commits (see `group.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::{codec, keys};
use crate::{Direction, Offset, ReadRange, StoreError, StoredMessage};

/// Reads preallocate at most this many slots, whatever `limit` says.
const MAX_PREALLOCATED: usize = 1024;

/// Handles to the open database. Cloning is a few reference-count bumps.
#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) db: Database,
    /// Message values, keyed by channel prefix + big-endian offset.
    pub(crate) messages: Keyspace,
    /// Idempotency records, keyed by channel prefix + publisher key.
    pub(crate) idempotency: Keyspace,
    /// Last assigned offset per channel, keyed by channel prefix. Written in
    /// the same atomic batch as the messages, and never lowered, so offsets
    /// are not reused even if old messages are trimmed some day.
    pub(crate) heads: Keyspace,
    /// Plugin key-value data, keyed by tenant, namespace and key (`kv.rs`).
    pub(crate) kv: Keyspace,
    /// Plugin records (versions, active, previous) and per-name version
    /// counters (`registry.rs`).
    pub(crate) plugins: Keyspace,
    /// Plugin component bytes, keyed by tenant, name and version. Apart from
    /// the records so that listing plugins never reads megabytes of wasm.
    pub(crate) components: Keyspace,
    /// Latest position per entity, keyed by channel prefix + entity id
    /// (`positions.rs`).
    pub(crate) positions_latest: Keyspace,
    /// Position history, keyed by channel prefix + length-prefixed entity id
    /// + big-endian timestamp (`positions.rs`).
    pub(crate) positions_history: Keyspace,
    /// Serializes position writes (the latest position is a read-compare-
    /// write) and the sweep of expired history against them.
    pub(crate) positions_lock: Arc<Mutex<()>>,
    /// Serializes the read-modify-write paths of `kv` and `plugins`
    /// (increment, version numbering, activation) and the sweep of `kv`.
    /// Those calls are rare next to appends, so one lock is simpler than
    /// routing them through the writer thread, and it never delays appends.
    pub(crate) meta_lock: Arc<Mutex<()>>,
}

impl Engine {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder(path).open().map_err(|e| match e {
            fjall::Error::Locked => StoreError::Io(format!(
                "data directory {} is in use by another process; stop it or pick another path",
                path.display()
            )),
            other => map_fjall(other),
        })?;
        let keyspace = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(map_fjall)
        };
        Ok(Self {
            messages: keyspace("messages")?,
            idempotency: keyspace("idempotency")?,
            heads: keyspace("heads")?,
            kv: keyspace("kv")?,
            plugins: keyspace("plugins")?,
            components: keyspace("plugin_components")?,
            positions_latest: keyspace("positions_latest")?,
            positions_history: keyspace("positions_history")?,
            positions_lock: Arc::new(Mutex::new(())),
            meta_lock: Arc::new(Mutex::new(())),
            db,
        })
    }

    /// The durable head of the channel with `prefix`, or 0.
    pub(crate) fn head(&self, prefix: &[u8]) -> Result<Offset, StoreError> {
        match self.heads.get(prefix).map_err(map_fjall)? {
            Some(value) => codec::decode_head(&value),
            None => Ok(0),
        }
    }

    /// A range scan of one channel's messages.
    pub(crate) fn read(
        &self,
        prefix: &[u8],
        range: ReadRange,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let Some((first, last)) = keys::read_bounds(prefix, &range) else {
            return Ok(Vec::new());
        };
        let iter = self.messages.range(first..=last);
        let iter: Box<dyn Iterator<Item = fjall::Guard>> = match range.direction {
            Direction::Forward => Box::new(iter),
            Direction::Backward => Box::new(iter.rev()),
        };
        let mut out = Vec::with_capacity(range.limit.min(MAX_PREALLOCATED));
        for guard in iter.take(range.limit) {
            let (key, value) = guard.into_inner().map_err(map_fjall)?;
            let offset = keys::offset_of(prefix, &key)?;
            out.push(codec::decode_message(offset, &value)?);
        }
        Ok(out)
    }
}

/// Maps an engine error to the layer's error, with what to do about it.
pub(crate) fn map_fjall(err: fjall::Error) -> StoreError {
    match err {
        fjall::Error::Io(e) => StoreError::Io(e.to_string()),
        fjall::Error::Poisoned => StoreError::Io(
            "an earlier write to disk failed, so the store refuses writes; \
             restart the process after checking the disk"
                .into(),
        ),
        e @ (fjall::Error::JournalRecovery(_)
        | fjall::Error::InvalidVersion(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Unrecoverable) => StoreError::Corrupt {
            what: format!("{e:?}"),
        },
        other => StoreError::Io(format!("{other:?}")),
    }
}

/// Wall-clock milliseconds, used only to age idempotency records. A clock
/// before 1970 reads as 0, which makes records look fresh, never expired
/// early.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
