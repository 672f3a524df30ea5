//! Messages from the public API to the connection task.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::error::ClientError;
use crate::subscription::SubShared;
use crate::types::{HistoryPage, HistoryQuery, PublishAck, PublishOptions, SubscriptionEvent};

/// Where the connection task sends one request's outcome.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// One API call, queued to the connection task on a bounded channel.
///
/// Requests carry an in-flight permit that lives as long as the request is
/// pending in the task, so callers that time out cannot make the task's
/// pending table grow past `max_in_flight`.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        channel: String,
        /// `key` is always set here: the API fills in a random one.
        options: PublishOptions,
        reply: Reply<PublishAck>,
        permit: OwnedSemaphorePermit,
    },
    /// An update (`delete` false: `options` holds the new content) or a
    /// deletion of the item at `target`; answered like a publish.
    Edit {
        channel: String,
        target: u64,
        delete: bool,
        /// `key` is always set here, as for a publish.
        options: PublishOptions,
        reply: Reply<PublishAck>,
        permit: OwnedSemaphorePermit,
    },
    History {
        channel: Arc<str>,
        query: HistoryQuery,
        reply: Reply<HistoryPage>,
        permit: OwnedSemaphorePermit,
    },
    Subscribe {
        shared: Arc<SubShared>,
        since: Option<u64>,
        /// Replay the latest `last` messages first (when `since` is None).
        last: u32,
        /// The sending half of the subscription's bounded queue.
        tx: mpsc::Sender<SubscriptionEvent>,
        /// Answered with the Subscribed head_offset.
        reply: Reply<u64>,
        permit: OwnedSemaphorePermit,
    },
    Unsubscribe {
        id: u64,
        reply: Reply<()>,
        permit: OwnedSemaphorePermit,
    },
    /// A Track frame: a datagram when the connection carries them, the
    /// control stream otherwise. Never answered.
    Track { frame: bytes::Bytes },
    /// Graceful shutdown; answered once the connection is closed.
    Close { done: oneshot::Sender<()> },
}
