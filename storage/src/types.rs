use std::sync::Arc;

use bytes::Bytes;

/// Position of a message in its channel: 1 for the first message, then +1.
pub type Offset = u64;

/// A ULID (48-bit Unix milliseconds, 80 random bits) as one big-endian u128,
/// so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u128);

/// A channel within a tenant: the unit of ordering and of every storage key.
/// Cloning is two reference-count bumps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    pub tenant: Arc<str>,
    pub channel: Arc<str>,
}

impl ChannelKey {
    pub fn new(tenant: impl Into<Arc<str>>, channel: impl Into<Arc<str>>) -> Self {
        Self {
            tenant: tenant.into(),
            channel: channel.into(),
        }
    }
}

/// An application header carried with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A message to append. The store assigns its offset.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub channel: ChannelKey,
    /// Chosen by the gateway when the publish arrives; kept only if the
    /// message is new (a duplicate returns the original id).
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub sender: Arc<str>,
    pub payload: Bytes,
    pub headers: Vec<Header>,
    /// The publisher's idempotency key, scoped to the channel.
    pub idempotency_key: Option<Arc<str>>,
    /// `Some` when this message edits an earlier item of the same channel
    /// (see [`MessageLog`](crate::MessageLog) for what the store does).
    pub edit: Option<Edit>,
}

/// The outcome of appending one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub offset: Offset,
    pub id: MessageId,
    pub timestamp_ms: u64,
    /// The idempotency key matched an earlier message; nothing was written
    /// and `offset`, `id` and `timestamp_ms` are the earlier message's.
    pub duplicate: bool,
}

/// A message read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub offset: Offset,
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub sender: Arc<str>,
    pub payload: Bytes,
    pub headers: Vec<Header>,
    /// `Some` when this message is an edit record of an earlier item.
    pub edit: Option<Edit>,
    /// Whether a later edit updated or deleted this item (its payload and
    /// headers are then the update's, or empty).
    pub state: ItemState,
}

/// What an edit record does to the item it targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    /// Replaces the target's payload and headers with the edit's.
    Update,
    /// Empties the target's payload and headers.
    Delete,
}

/// Marks a message as an edit of an earlier item of the same channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Offset of the edited item, in the edit's own channel.
    pub target: Offset,
    pub kind: EditKind,
}

/// The current state of a stored item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ItemState {
    /// As appended.
    #[default]
    Original,
    /// An update replaced its payload and headers.
    Updated,
    /// A delete emptied its payload and headers.
    Deleted,
}

impl ItemState {
    /// The state after an edit of `kind` hits an item in this state, or
    /// `None` when the edit changes nothing (the item is deleted already).
    pub(crate) fn after(self, kind: EditKind) -> Option<ItemState> {
        match (self, kind) {
            (ItemState::Deleted, _) => None,
            (_, EditKind::Update) => Some(ItemState::Updated),
            (_, EditKind::Delete) => Some(ItemState::Deleted),
        }
    }
}

/// Which end of a range a read starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first (increasing offsets).
    Forward,
    /// Newest first (decreasing offsets).
    #[default]
    Backward,
}

/// Bounds of a read: offsets strictly greater than `after` and strictly
/// lower than `before`, at most `limit` of them, walked in `direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRange {
    pub after: Option<Offset>,
    pub before: Option<Offset>,
    pub limit: usize,
    pub direction: Direction,
}

impl ReadRange {
    /// Up to `limit` messages after `after`, oldest first: what a resuming
    /// subscriber replays.
    pub fn forward_after(after: Offset, limit: usize) -> Self {
        Self {
            after: Some(after),
            before: None,
            limit,
            direction: Direction::Forward,
        }
    }
}
