//! Delivery of one subscription: replay from the log, then live from the
//! hub, in offset order with no gap and no duplicate.
//!
//! The hub only ever sees messages after they are durable, so whenever a
//! live message arrives with an offset beyond the next expected one, the
//! missing ones are already in the store and are read from there. The same
//! rule covers a subscriber that attached while a message was in flight, a
//! replay that overlaps live traffic, and a ring that overflowed during a
//! long replay. Memory stays bounded: replay goes page by page at the pace
//! the stream accepts, and live traffic waits in the channel's fixed ring.
//!
//! On a channel with presence, the subscription registers with the node's
//! [`Presence`] registry for as long as its task runs. Its stream first gets
//! a joined `Presence` frame for every user present (itself included), then
//! join and leave events interleaved with the messages.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Encoder, MessageRef};
use quiver_session::{StartAt, SubscriptionId};
use quiver_storage::{ChannelKey, MessageLog, Offset, ReadRange, StoreError, StoredMessage};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, oneshot};
use tracing::debug;

use crate::hub::{Delivery, Hub, HubSubscription};
use crate::metrics::Metrics;
use crate::presence::{Presence, PresenceEvent, PresenceGuard};

/// Messages read from the store per replay page.
const REPLAY_PAGE: usize = 256;
/// Live frames written to the stream per write call.
const LIVE_BATCH: usize = 64;
/// How often a blocked live write checks whether the ring is full.
const STALL_CHECK: Duration = Duration::from_millis(100);

/// Where a subscription's frames go: a QUIC stream today, a WebTransport
/// stream or a multiplexed WebSocket later.
pub trait FrameSink: Send + 'static {
    /// Writes every frame, in order, waiting for flow control.
    fn send(&mut self, frames: &mut [Bytes])
    -> impl Future<Output = Result<(), SinkClosed>> + Send;
}

/// The peer stopped the stream or the connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkClosed;

/// Why a subscription's delivery ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEnd {
    /// The stream or connection went away.
    SinkClosed,
    /// The subscriber fell a whole ring behind live traffic.
    SlowConsumer,
}

/// What every subscription's delivery needs from the server.
#[derive(Clone)]
pub struct DeliveryContext {
    pub store: Arc<dyn MessageLog>,
    pub hub: Arc<Hub>,
    pub metrics: Metrics,
    /// Who is subscribed to the channels with presence.
    pub presence: Arc<Presence>,
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext").finish_non_exhaustive()
    }
}

/// A subscription that takes part in its channel's presence.
#[derive(Clone, Debug)]
pub struct PresenceMember {
    /// Presence frames carry it.
    pub subscription_id: SubscriptionId,
    /// The subscribing connection's user.
    pub user: Arc<str>,
}

/// Runs one subscription until it ends. `started` receives the channel's
/// head once the subscription is attached (and registered for presence
/// when `presence` is set), or the store error that prevented it.
pub async fn deliver(
    ctx: DeliveryContext,
    key: ChannelKey,
    start: StartAt,
    presence: Option<PresenceMember>,
    mut sink: impl FrameSink,
    started: oneshot::Sender<Result<Offset, StoreError>>,
) -> DeliveryEnd {
    // Attach before reading the head: everything committed after the read
    // arrives live, everything before it is in the store.
    let mut live = ctx.hub.subscribe(key.clone());
    let head = match ctx.store.head(&key).await {
        Ok(head) => head,
        Err(error) => {
            let _ = started.send(Err(error));
            return DeliveryEnd::SinkClosed;
        }
    };
    // Registered until this future is dropped: the guard unregisters on
    // every way out, an aborted task included.
    let mut encoder = Encoder::new();
    let mut frames = Vec::with_capacity(LIVE_BATCH);
    let mut feed = None;
    if let Some(member) = presence {
        let (joined, snapshot) = PresenceFeed::join(&ctx.presence, &key, member, &mut encoder);
        frames.extend(snapshot);
        feed = Some(joined);
    }
    let _ = started.send(Ok(head));
    let mut cursor = Cursor {
        ctx,
        key,
        next: match start {
            StartAt::Head => head,
            StartAt::After(since) => since,
            StartAt::Last(last) => head.saturating_sub(u64::from(last)),
        }
        .saturating_add(1),
        encoder,
        frames,
        presence: feed,
    };
    match cursor.run(&mut live, &mut sink).await {
        Ok(end) | Err(end) => end,
    }
}

struct Cursor {
    ctx: DeliveryContext,
    key: ChannelKey,
    /// The next offset the subscriber must receive.
    next: Offset,
    encoder: Encoder,
    frames: Vec<Bytes>,
    /// Join and leave events, on channels with presence.
    presence: Option<PresenceFeed>,
}

/// A subscription's registration in its channel's presence and the events
/// it forwards.
pub(crate) struct PresenceFeed {
    pub(crate) subscription_id: SubscriptionId,
    pub(crate) events: broadcast::Receiver<PresenceEvent>,
    /// Keeps the subscription registered.
    pub(crate) _guard: PresenceGuard,
}

impl PresenceFeed {
    /// Registers `member` on `key`; returns the feed and the frames of the
    /// users already present (this one included), to send first.
    pub(crate) fn join(
        presence: &Arc<Presence>,
        key: &ChannelKey,
        member: PresenceMember,
        encoder: &mut Encoder,
    ) -> (Self, Vec<Bytes>) {
        let joined = presence.join(key, member.user);
        let frames = joined
            .snapshot
            .iter()
            .map(|event| presence_frame(encoder, member.subscription_id, event))
            .collect();
        let feed = PresenceFeed {
            subscription_id: member.subscription_id,
            events: joined.events,
            _guard: joined.guard,
        };
        (feed, frames)
    }
}

pub(crate) fn presence_frame(
    encoder: &mut Encoder,
    id: SubscriptionId,
    event: &PresenceEvent,
) -> Bytes {
    encoder.presence(id, &event.user, event.joined, event.connections)
}

/// The next presence event, or never without presence.
pub(crate) async fn next_presence(
    feed: &mut Option<PresenceFeed>,
) -> Result<PresenceEvent, broadcast::error::RecvError> {
    match feed {
        Some(feed) => feed.events.recv().await,
        None => std::future::pending().await,
    }
}

impl Cursor {
    async fn run(
        &mut self,
        live: &mut HubSubscription,
        sink: &mut impl FrameSink,
    ) -> Result<DeliveryEnd, DeliveryEnd> {
        self.catch_up(None, sink).await?;
        // Until the subscriber has once drained the ring, lag means the
        // replay was long, not that the subscriber is slow.
        let mut caught_up = false;
        loop {
            self.take_presence()?;
            let first = match live.receiver().try_recv() {
                Ok(delivery) => delivery,
                Err(TryRecvError::Empty) if !self.frames.is_empty() => {
                    // Presence events only: send them before waiting.
                    caught_up = true;
                    self.flush_live(sink, live).await?;
                    continue;
                }
                Err(TryRecvError::Empty) => {
                    caught_up = true;
                    tokio::select! {
                        received = live.receiver().recv() => match received {
                            Ok(delivery) => delivery,
                            Err(RecvError::Lagged(_)) => return Err(DeliveryEnd::SlowConsumer),
                            Err(RecvError::Closed) => return Ok(DeliveryEnd::SinkClosed),
                        },
                        event = next_presence(&mut self.presence) => {
                            self.push_presence(event)?;
                            continue;
                        }
                    }
                }
                Err(TryRecvError::Lagged(_)) if !caught_up => {
                    self.catch_up(None, sink).await?;
                    continue;
                }
                Err(TryRecvError::Lagged(_)) => return Err(DeliveryEnd::SlowConsumer),
                Err(TryRecvError::Closed) => return Ok(DeliveryEnd::SinkClosed),
            };
            self.take(first, sink).await?;
            // Drain what else is queued into one write.
            while self.frames.len() < LIVE_BATCH {
                match live.receiver().try_recv() {
                    Ok(delivery) => self.take(delivery, sink).await?,
                    Err(TryRecvError::Lagged(_)) if caught_up => {
                        return Err(DeliveryEnd::SlowConsumer);
                    }
                    Err(_) => break,
                }
            }
            if caught_up {
                self.flush_live(sink, live).await?;
            } else {
                self.flush(sink).await?;
            }
        }
    }

    /// Queues the presence events that arrived, without waiting.
    fn take_presence(&mut self) -> Result<(), DeliveryEnd> {
        while let Some(feed) = self.presence.as_mut() {
            let event = match feed.events.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            self.push_presence(event)?;
        }
        Ok(())
    }

    /// Queues one presence event. Lost events (the ring overflowed while
    /// the stream was blocked) would leave the subscriber with a wrong list
    /// of users, so that is a slow consumer, which resubscribes and gets a
    /// fresh snapshot.
    fn push_presence(
        &mut self,
        event: Result<PresenceEvent, broadcast::error::RecvError>,
    ) -> Result<(), DeliveryEnd> {
        let Some(feed) = self.presence.as_ref() else {
            return Ok(());
        };
        match event {
            Ok(event) => {
                let frame = presence_frame(&mut self.encoder, feed.subscription_id, &event);
                self.frames.push(frame);
                Ok(())
            }
            Err(RecvError::Lagged(_)) => Err(DeliveryEnd::SlowConsumer),
            Err(RecvError::Closed) => {
                self.presence = None;
                Ok(())
            }
        }
    }

    /// Writes like `flush`, but a subscriber whose stream stays blocked
    /// while its ring fills up is a slow consumer: waiting longer would
    /// only lose messages from the ring, so the client had better resume
    /// with `since`.
    async fn flush_live(
        &mut self,
        sink: &mut impl FrameSink,
        live: &mut HubSubscription,
    ) -> Result<(), DeliveryEnd> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let count = self.frames.len() as u64;
        let capacity = self.ctx.hub.ring_capacity();
        let written = {
            let mut write = std::pin::pin!(sink.send(&mut self.frames));
            // The common case, a write that fits the flow-control window,
            // costs no timer.
            match futures::poll!(&mut write) {
                std::task::Poll::Ready(result) => result,
                std::task::Poll::Pending => loop {
                    tokio::select! {
                        result = &mut write => break result,
                        () = tokio::time::sleep(STALL_CHECK) => {
                            if live.receiver().len() >= capacity {
                                return Err(DeliveryEnd::SlowConsumer);
                            }
                        }
                    }
                },
            }
        };
        written.map_err(|SinkClosed| DeliveryEnd::SinkClosed)?;
        self.frames.clear();
        self.ctx.metrics.delivered.inc_by(count);
        Ok(())
    }

    /// Queues a live message, first filling any gap before it from the store.
    async fn take(
        &mut self,
        delivery: Delivery,
        sink: &mut impl FrameSink,
    ) -> Result<(), DeliveryEnd> {
        if delivery.offset < self.next {
            return Ok(());
        }
        if delivery.offset > self.next {
            self.flush(sink).await?;
            self.catch_up(Some(delivery.offset), sink).await?;
        }
        if delivery.offset == self.next {
            self.frames.push(delivery.frame);
            self.next += 1;
        }
        Ok(())
    }

    /// Replays from the store every message from `next` up to (excluding)
    /// `until`, or to the end of the log.
    async fn catch_up(
        &mut self,
        until: Option<Offset>,
        sink: &mut impl FrameSink,
    ) -> Result<(), DeliveryEnd> {
        loop {
            if until.is_some_and(|until| self.next >= until) {
                return Ok(());
            }
            let range = ReadRange {
                after: Some(self.next - 1),
                before: until,
                limit: REPLAY_PAGE,
                direction: quiver_storage::Direction::Forward,
            };
            let page = self.read_with_retry(range).await;
            let full = page.len() == REPLAY_PAGE;
            for message in &page {
                if message.offset != self.next {
                    // A hole in the log would break the offset contract;
                    // say so loudly rather than stall the subscriber.
                    debug!(
                        expected = self.next,
                        got = message.offset,
                        "offset jump in replay"
                    );
                }
                let frame = self.encode(message);
                self.frames.push(frame);
                self.next = message.offset + 1;
            }
            self.flush(sink).await?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Store reads are retried until they succeed: a subscription stalls
    /// while the store is away and resumes where it was when it returns.
    async fn read_with_retry(&self, range: ReadRange) -> Vec<StoredMessage> {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.ctx.store.read(&self.key, range).await {
                Ok(page) => return page,
                Err(error) => {
                    debug!(%error, channel = %self.key.channel, "replay read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn encode(&mut self, message: &StoredMessage) -> Bytes {
        self.encoder.message(&MessageRef {
            offset: message.offset,
            id: message.id.0,
            sender: &message.sender,
            timestamp_ms: message.timestamp_ms,
            payload: &message.payload,
            headers: message
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_str())),
            meta: quiver_session::message_meta(message.edit, message.state),
        })
    }

    async fn flush(&mut self, sink: &mut impl FrameSink) -> Result<(), DeliveryEnd> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let count = self.frames.len() as u64;
        sink.send(&mut self.frames)
            .await
            .map_err(|SinkClosed| DeliveryEnd::SinkClosed)?;
        self.frames.clear();
        self.ctx.metrics.delivered.inc_by(count);
        Ok(())
    }
}
