//! Owned values the client hands to its users.

use std::sync::Arc;

use bytes::Bytes;

/// One message of a channel, from a subscription or a history page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The channel it was published to; shared by all messages of one
    /// subscription, so this costs no allocation per message.
    pub channel: Arc<str>,
    /// Position in the channel; strictly increasing along a subscription.
    pub offset: u64,
    /// The message's ULID as a u128 (48 bits of Unix ms, then randomness).
    pub id: u128,
    /// The publisher's user id.
    pub sender: String,
    /// Server time the message was accepted, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The payload: a slice of the received frame, not a copy.
    pub payload: Bytes,
    /// Application headers as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// An item, or an edit of the item at `target`.
    pub kind: MessageKind,
    /// For an edit: the offset of the item it changes.
    pub target: Option<u64>,
    /// For an item: whether an edit changed it since. History returns the
    /// current state (and the current payload); a live subscription
    /// delivers items as published (`Original`), then the edits.
    pub state: ItemState,
}

/// What a message of a channel's log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MessageKind {
    /// An item: a chat message, a feed entry.
    #[default]
    Item,
    /// Replaces the payload and headers of the item at `target`.
    Update,
    /// Deletes the item at `target`.
    Delete,
}

/// The current state of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ItemState {
    /// As published.
    #[default]
    Original,
    /// An update replaced its payload and headers.
    Updated,
    /// A delete removed it: payload and headers are empty.
    Deleted,
}

/// A user joined or left a channel with presence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceEvent {
    /// The subscription's channel.
    pub channel: Arc<str>,
    /// The user id (the token's `sub`).
    pub user: String,
    /// True when the user's first connection subscribed (or, at the start
    /// of a subscription, for every user already present); false when the
    /// last one left.
    pub joined: bool,
    /// The user's subscribed connections after this event (0 once left).
    pub connections: u32,
}

/// What a subscription delivers: see
/// [`Subscription::next_event`](crate::Subscription::next_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// A message of the channel, in offset order.
    Message(Message),
    /// A join or leave, on channels with presence.
    Presence(PresenceEvent),
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Replay every message after this offset first (resume).
    pub since: Option<u64>,
    /// Replay the latest `last` messages first (feeds); ignored when
    /// `since` is set. 0: start live at the head.
    pub last: u32,
}

impl SubscribeOptions {
    /// Live from the channel's head.
    pub fn live() -> Self {
        Self::default()
    }

    /// Every message after offset `since` first.
    pub fn since(since: u64) -> Self {
        Self {
            since: Some(since),
            ..Self::default()
        }
    }

    /// The latest `last` messages first (fewer if the channel has fewer).
    pub fn last(last: u32) -> Self {
        Self {
            last,
            ..Self::default()
        }
    }
}

/// The server's confirmation that a message is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishAck {
    /// The message's offset in the channel.
    pub offset: u64,
    /// The message's ULID as a u128.
    pub id: u128,
    /// True when the idempotency key matched an earlier publish: nothing new
    /// was written and `offset`/`id` are the first publish's. Expected after
    /// a reconnect re-sent an in-flight publish.
    pub duplicate: bool,
    /// True when a tenant plugin dropped the message: accepted, but neither
    /// stored nor delivered; `offset` and `id` are 0.
    pub dropped: bool,
}

/// What to publish, beyond the channel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The message body.
    pub payload: Bytes,
    /// Application headers as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// Idempotency key. `None` lets the client pick a random one, which still
    /// makes its own retries after a reconnect safe; set it to make retries
    /// across client restarts safe too.
    pub key: Option<String>,
}

impl PublishOptions {
    /// Options with this payload, no headers and an automatic key.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// Adds one header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the idempotency key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Order of a history page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first: offsets decrease along the page.
    #[default]
    Backward,
    /// Oldest first: offsets increase along the page.
    Forward,
}

/// Which slice of a channel's history to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// Page size; the server caps it at its own maximum. Default: 100.
    pub limit: u32,
    /// Only offsets strictly lower than this.
    pub before: Option<u64>,
    /// Only offsets strictly greater than this.
    pub after: Option<u64>,
    /// Page order. Default: newest first.
    pub direction: Direction,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self {
            limit: 100,
            before: None,
            after: None,
            direction: Direction::Backward,
        }
    }
}

impl HistoryQuery {
    /// The newest `limit` messages.
    pub fn latest(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Only offsets strictly lower than `offset` (page further back).
    pub fn before(mut self, offset: u64) -> Self {
        self.before = Some(offset);
        self
    }

    /// Only offsets strictly greater than `offset`.
    pub fn after(mut self, offset: u64) -> Self {
        self.after = Some(offset);
        self
    }

    /// Page order.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The messages, in the query's direction.
    pub messages: Vec<Message>,
    /// True when more messages lie beyond the last one of this page.
    pub has_more: bool,
}
