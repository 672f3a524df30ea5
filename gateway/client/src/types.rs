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
