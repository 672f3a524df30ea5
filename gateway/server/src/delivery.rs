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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Encoder, MessageRef};
use quiver_storage::{ChannelKey, MessageLog, Offset, ReadRange, StoreError, StoredMessage};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::oneshot;
use tracing::debug;

use crate::hub::{Delivery, Hub, HubSubscription};
use crate::metrics::Metrics;

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
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext").finish_non_exhaustive()
    }
}

/// Runs one subscription until it ends. `started` receives the channel's
/// head once the subscription is attached, or the store error that
/// prevented it.
pub async fn deliver(
    ctx: DeliveryContext,
    key: ChannelKey,
    since: Option<Offset>,
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
    let _ = started.send(Ok(head));
    let mut cursor = Cursor {
        ctx,
        key,
        next: since.unwrap_or(head).saturating_add(1),
        encoder: Encoder::new(),
        frames: Vec::with_capacity(LIVE_BATCH),
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
            let first = match live.receiver().try_recv() {
                Ok(delivery) => delivery,
                Err(TryRecvError::Empty) => {
                    caught_up = true;
                    match live.receiver().recv().await {
                        Ok(delivery) => delivery,
                        Err(RecvError::Lagged(_)) => return Err(DeliveryEnd::SlowConsumer),
                        Err(RecvError::Closed) => return Ok(DeliveryEnd::SinkClosed),
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
