//! Durable storage for Quiver.
//!
//! The gateway talks to storage only through the traits in this crate, so the
//! embedded default ([`embedded::EmbeddedStore`], on fjall) and the ScyllaDB
//! backend for multi-node deployments (`scylla::ScyllaStore`, feature
//! `scylla`, on by default) are interchangeable. Every key is
//! scoped by tenant: a [`ChannelKey`] always carries its tenant, and no method
//! takes a bare channel name.
//!
//! Offsets are assigned by the store, never by the caller, because only the
//! store can keep them gap-free and strictly increasing when several gateway
//! nodes write to one channel (see `storage/README.md`).

mod error;
mod kv;
mod positions;
mod registry;
mod types;

pub mod embedded;
#[cfg(feature = "scylla")]
pub mod scylla;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::StoreError;
pub use kv::{KeyValueStore, KvScope, MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES};
pub use positions::{MAX_ENTITY_BYTES, Position, PositionRecord, PositionStore};
pub use registry::{
    MAX_PLUGIN_NAME_BYTES, PluginRecord, PluginRegistry, PluginVersion, PluginVersionMeta,
};
pub use types::{
    Appended, ChannelKey, Direction, Edit, EditKind, Header, ItemState, MessageId, NewMessage,
    Offset, ReadRange, StoredMessage,
};

use async_trait::async_trait;

/// The durable, per-channel message log.
///
/// Implementations must guarantee, for every channel:
/// - offsets start at 1 and increase by exactly 1 per appended message;
/// - `append` returns only once the messages are durable (an acked message
///   survives a crash of the process);
/// - an idempotency key seen before on the same channel yields the original
///   offset and id with `duplicate = true` and writes nothing;
/// - an offset is never reused, even after a crash;
/// - tenant and channel names are 1 to 255 bytes; any other name fails with
///   [`StoreError::Invalid`] and, in `append`, nothing of the batch is written.
///
/// # Edits
///
/// A message with `edit: Some(Edit { target, kind })` edits the item at
/// offset `target` of the same channel:
/// - it is appended like any message: it gets the next offset, and reads at
///   that offset return it with its `edit` and its own payload and headers
///   (for an update the new content; for a delete whatever the caller
///   passed, normally nothing);
/// - in the same durable write, the target is rewritten in place: an
///   [`EditKind::Update`] replaces its payload and headers with the edit's
///   and sets [`ItemState::Updated`]; an [`EditKind::Delete`] empties them
///   and sets [`ItemState::Deleted`]. Its offset, id, sender and timestamp
///   stay. Reads return the rewritten item;
/// - an edit whose target does not exist (or is not lower than the edit's
///   own offset), is itself an edit, or is deleted already changes nothing
///   in place, and does not fail: callers validate targets beforehand, the
///   store only never fails or corrupts on them. So an update of a deleted
///   item leaves it deleted;
/// - an edit whose idempotency key is a duplicate writes nothing, the
///   rewrite included, like any duplicate;
/// - edits keep every guarantee above (gap-free offsets, durability on
///   ack, the atomicity of a batch as the backend gives it).
///
/// The conformance suite (feature `conformance`) checks all of this.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends a batch of messages, possibly for many channels, and returns
    /// one outcome per input, in input order. Within one channel the batch
    /// order is the offset order. Backends group a batch into as few durable
    /// writes as they can (the embedded store uses one fsync per batch).
    ///
    /// An `Err` means nothing in the batch may be assumed written; callers
    /// must not ack any of it.
    async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError>;

    /// Reads up to `range.limit` messages of one channel in the order and
    /// bounds `range` gives.
    async fn read(
        &self,
        channel: &ChannelKey,
        range: ReadRange,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// The channel's last assigned offset, or 0 when it has none yet.
    async fn head(&self, channel: &ChannelKey) -> Result<Offset, StoreError>;

    /// Cheap round trip that tells whether the store can serve requests now
    /// (used by `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Checks a channel key against the names [`MessageLog`] accepts: tenant
/// and channel names of 1 to [`embedded::MAX_NAME_BYTES`] bytes. Every
/// backend calls it, so they refuse the same names with the same errors.
pub(crate) fn validate_channel(key: &ChannelKey) -> Result<(), StoreError> {
    let max = embedded::MAX_NAME_BYTES;
    registry::validate_name("tenant name", &key.tenant, max)?;
    registry::validate_name("channel name", &key.channel, max)
}

/// Checks a message's idempotency key: 1 to
/// [`embedded::MAX_IDEMPOTENCY_KEY_BYTES`] bytes (a message without one
/// carries `None`, not an empty key).
pub(crate) fn validate_idempotency_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid(
            "idempotency key is empty; omit it instead".into(),
        ));
    }
    registry::validate_name("idempotency key", key, embedded::MAX_IDEMPOTENCY_KEY_BYTES)
}

/// Everything the gateway keeps: the message log, plugin key-value data,
/// the plugin registry and tracked positions. Each backend implements all
/// four, so one config setting moves all of a deployment's data.
pub trait Store: MessageLog + KeyValueStore + PluginRegistry + PositionStore {}

impl<T: MessageLog + KeyValueStore + PluginRegistry + PositionStore> Store for T {}
