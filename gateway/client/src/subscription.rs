//! The user's end of a subscription: a bounded queue of messages, filtered
//! so that reconnects never show a duplicate.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::client::Client;
use crate::command::Command;
use crate::error::ClientError;
use crate::types::{Message, SubscriptionEvent};

/// State shared between a [`Subscription`] and the connection task.
#[derive(Debug)]
pub(crate) struct SubShared {
    /// The client-side id: stable across reconnects, unlike the server's
    /// subscription id, which is per connection.
    pub(crate) id: u64,
    /// The channel, shared by every message of the subscription.
    pub(crate) channel: Arc<str>,
    /// Where a resubscribe resumes: the last offset delivered to the user,
    /// or the starting point until something is. Written by the consumer,
    /// read by the task on reconnect; a stale read only makes the server
    /// replay messages the consumer then drops as duplicates.
    resume: AtomicU64,
    /// Why the subscription ended, reported once after the queue drains.
    terminal: Mutex<Option<ClientError>>,
    /// Set for a tracking watch: its rate and where its positions go.
    pub(crate) watch: Option<WatchSpec>,
}

/// What makes a subscription a tracking watch.
#[derive(Debug, Clone)]
pub(crate) struct WatchSpec {
    /// Positions per entity per second asked of the server (0: its maximum).
    pub(crate) max_rate: u32,
    pub(crate) positions: mpsc::Sender<crate::tracking::PositionBatch>,
}

impl SubShared {
    pub(crate) fn new(id: u64, channel: Arc<str>) -> Self {
        Self {
            id,
            channel,
            resume: AtomicU64::new(0),
            terminal: Mutex::new(None),
            watch: None,
        }
    }

    pub(crate) fn watching(id: u64, channel: Arc<str>, watch: WatchSpec) -> Self {
        Self {
            watch: Some(watch),
            ..Self::new(id, channel)
        }
    }

    pub(crate) fn resume(&self) -> u64 {
        self.resume.load(Ordering::Acquire)
    }

    pub(crate) fn set_resume(&self, offset: u64) {
        self.resume.store(offset, Ordering::Release);
    }

    /// Records why the subscription ends; the first reason wins.
    pub(crate) fn end_with(&self, error: ClientError) {
        let mut slot = self.terminal.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    fn take_terminal(&self) -> Option<ClientError> {
        self.terminal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A live subscription to one channel.
///
/// Read it with [`Subscription::next`] or as a [`futures::Stream`]. Offsets
/// increase strictly; across automatic reconnects the stream continues
/// where it left off, with no gap and no duplicate. It ends with `None`
/// after [`Client::close`], or with one `Err` when the subscription can no
/// longer continue (reconnecting gave up, the token expired, the server
/// refused to resubscribe); to carry on by hand, subscribe again with
/// `since = last_offset()`.
///
/// On a channel with presence the subscription also carries join and
/// leave events: read them with [`Subscription::next_event`], which
/// returns messages and presence events in arrival order. `next` (and the
/// `Stream`) return messages only and skip presence events. A subscription
/// first receives a joined event for every user present (itself
/// included); after an automatic reconnect that snapshot comes again, so
/// treat joins as idempotent (a user who left while the client was
/// disconnected is then missing from the new snapshot).
///
/// Dropping it unsubscribes in the background.
#[derive(Debug)]
pub struct Subscription {
    client: Client,
    shared: Arc<SubShared>,
    rx: mpsc::Receiver<SubscriptionEvent>,
    cursor: Cursor,
    head_offset: u64,
    ended: bool,
    /// Set by `unsubscribe`, so Drop does not unsubscribe a second time.
    unsubscribed: bool,
}

impl Subscription {
    pub(crate) fn new(
        client: Client,
        shared: Arc<SubShared>,
        rx: mpsc::Receiver<SubscriptionEvent>,
        head_offset: u64,
    ) -> Self {
        Self {
            cursor: Cursor::new(shared.resume()),
            client,
            shared,
            rx,
            head_offset,
            ended: false,
            unsubscribed: false,
        }
    }

    /// The next message, `Some(Err(_))` once if the subscription failed,
    /// then `None` for ever. Cancel-safe: usable in `tokio::select!`
    /// without losing messages.
    pub async fn next(&mut self) -> Option<Result<Message, ClientError>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// The next message or presence event, `Some(Err(_))` once if the
    /// subscription failed, then `None` for ever. Cancel-safe, like `next`.
    pub async fn next_event(&mut self) -> Option<Result<SubscriptionEvent, ClientError>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The subscribed channel.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// Offset of the last message returned by `next`, if any.
    pub fn last_offset(&self) -> Option<u64> {
        self.cursor.last
    }

    /// The channel's last offset when the subscription was first set up.
    pub fn head_offset(&self) -> u64 {
        self.head_offset
    }

    /// Stops the subscription and waits for the server to confirm.
    /// Messages still queued are discarded.
    pub async fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.unsubscribed = true;
        let id = self.shared.id;
        self.client
            .call(|reply, permit| Command::Unsubscribe { id, reply, permit })
            .await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, ClientError>>> {
        loop {
            match std::task::ready!(self.poll_event(cx)) {
                Some(Ok(SubscriptionEvent::Message(message))) => {
                    return Poll::Ready(Some(Ok(message)));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(None),
            }
        }
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<SubscriptionEvent, ClientError>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match std::task::ready!(self.rx.poll_recv(cx)) {
                // Replayed after a reconnect, already delivered.
                Some(SubscriptionEvent::Message(message))
                    if !self.cursor.accept(message.offset) =>
                {
                    continue;
                }
                Some(SubscriptionEvent::Message(message)) => {
                    self.shared.set_resume(message.offset);
                    return Poll::Ready(Some(Ok(SubscriptionEvent::Message(message))));
                }
                Some(event) => return Poll::Ready(Some(Ok(event))),
                None => {
                    self.ended = true;
                    return Poll::Ready(self.shared.take_terminal().map(Err));
                }
            }
        }
    }
}

/// Which offsets are new to the user.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Offsets at or below this were delivered already (or precede the
    /// starting point) and are dropped.
    floor: u64,
    /// The last offset delivered.
    last: Option<u64>,
}

impl Cursor {
    fn new(floor: u64) -> Self {
        Self { floor, last: None }
    }

    /// Whether `offset` is to be delivered; if so it becomes the floor.
    fn accept(&mut self, offset: u64) -> bool {
        if offset <= self.floor {
            return false;
        }
        self.floor = offset;
        self.last = Some(offset);
        true
    }
}

impl futures::Stream for Subscription {
    type Item = Result<Message, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.unsubscribed && !self.ended {
            self.client.subscription_dropped(self.shared.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_drops_replays_and_regressions() {
        let mut cursor = Cursor::new(10);
        let delivered: Vec<u64> = [9, 10, 11, 12, 11, 12, 13, 15]
            .into_iter()
            .filter(|o| cursor.accept(*o))
            .collect();
        assert_eq!(delivered, [11, 12, 13, 15]);
        assert_eq!(cursor.last, Some(15));
    }

    #[test]
    fn first_terminal_error_wins_and_is_taken_once() {
        let shared = SubShared::new(1, Arc::from("c"));
        shared.end_with(ClientError::Closed);
        shared.end_with(ClientError::Io("later".into()));
        assert!(matches!(shared.take_terminal(), Some(ClientError::Closed)));
        assert!(shared.take_terminal().is_none());
    }
}
