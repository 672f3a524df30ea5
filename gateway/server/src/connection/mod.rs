//! Drives one client's [`Session`] over any transport: performs the
//! session's actions (store, hub, subscriptions) and feeds their outcomes
//! back. No protocol rule lives here or in the transports; they live in the
//! session, so every transport enforces the same ones.
//!
//! This file holds the transport interface and the driver's loop;
//! `actions` performs what the session asks, `requests` runs plugins and
//! edit checks, `subscriptions` starts and ends subscription tasks, and
//! `lanes` tracks which request streams still owe answers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use quiver_proto::DecodeError;
use quiver_proto::fb::ErrorCode;
use quiver_session::{Authenticator, ChannelRules, LaneId, Limits, Now, Session, SubscriptionId};
use quiver_storage::{Appended, StoreError, StoredMessage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::delivery::{DeliveryContext, DeliveryEnd, FrameSink, SinkClosed};
use crate::hooks::Hooks;
use crate::pipeline::PublishPipeline;
use crate::tracking::{DatagramOut, Tracker};

use lanes::LaneLedger;

mod actions;
mod lanes;
mod requests;
mod subscriptions;

/// What a transport reports about the client's side.
#[derive(Debug)]
pub enum Inbound {
    /// One complete frame read from a lane.
    Frame { lane: LaneId, frame: Bytes },
    /// A lane's bytes could not be split into frames.
    Invalid(DecodeError),
    /// The client finished its control stream.
    ControlFinished,
    /// The client finished a request lane: once its requests are answered,
    /// the server finishes its side too, freeing the stream.
    LaneFinished(LaneId),
    /// One QUIC datagram (a `Track`).
    Datagram(Bytes),
}

/// The lane's outbound queue is full or gone: the client is not reading.
#[derive(Debug, Clone, Copy)]
pub struct LaneBlocked;

/// The I/O side of one connection, implemented once per transport.
pub trait Transport: Send + 'static {
    type Sink: FrameSink;
    type Datagrams: DatagramOut;

    /// Queues a frame on a lane without waiting.
    fn send(&mut self, lane: LaneId, frame: Bytes) -> Result<(), LaneBlocked>;

    /// Finishes the server's side of a lane after what is queued on it.
    fn finish_lane(&mut self, lane: LaneId);

    /// Opens the stream that carries a subscription and writes its header.
    fn open_subscription(
        &self,
        id: SubscriptionId,
        channel: &str,
    ) -> impl Future<Output = Result<Self::Sink, SinkClosed>> + Send + 'static;

    /// The connection's datagram sender, for tracking watchers.
    fn datagrams(&self) -> Self::Datagrams;

    /// Flushes what is queued (waiting a bounded time), then closes the
    /// connection with `code`.
    fn close(self, code: ErrorCode, reason: &str) -> impl Future<Output = ()> + Send;
}

/// What every connection shares.
pub struct Shared {
    pub hooks: Arc<dyn Hooks>,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
    pub pipeline: PublishPipeline,
    pub delivery: DeliveryContext,
    /// Flips to true when the server starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    pub shutdown_grace: Duration,
    pub reconnect_after_ms: u32,
    /// Channel kinds and options by namespace.
    pub channels: Arc<ChannelRules>,
    pub tracker: Arc<Tracker>,
}

enum Completion {
    Published {
        lane: LaneId,
        request_id: u64,
        received: Instant,
        result: Result<Appended, StoreError>,
    },
    History {
        lane: LaneId,
        request_id: u64,
        page_limit: usize,
        result: Result<Vec<StoredMessage>, StoreError>,
    },
    Subscribed {
        lane: LaneId,
        request_id: u64,
        id: SubscriptionId,
        result: Result<u64, StoreError>,
    },
    /// An edit's target is no editable item.
    EditTargetMissing {
        lane: LaneId,
        request_id: u64,
        target: u64,
    },
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

type Ended = (SubscriptionId, DeliveryEnd);

type Pending = FuturesUnordered<Pin<Box<dyn Future<Output = Completion> + Send>>>;

/// Serves one connection until it closes.
pub async fn serve<T: Transport>(
    shared: Arc<Shared>,
    transport: T,
    inbound: mpsc::Receiver<Inbound>,
    session_id: String,
) {
    let metrics = shared.delivery.metrics.clone();
    metrics.connections.inc();
    let seed = rand::random();
    let session = Session::new(
        shared.auth.clone(),
        shared.limits.clone(),
        session_id.as_str(),
        seed,
        Now::system(),
    )
    .with_channel_rules(shared.channels.clone());
    let mut driver = Driver {
        shared,
        session,
        transport: Some(transport),
        pending: FuturesUnordered::new(),
        deliveries: HashMap::new(),
        ended: mpsc::channel(16),
        close: None,
        lanes: LaneLedger::default(),
        finish_after_flush: Vec::new(),
    };
    driver.run(inbound).await;
    for (_, task) in driver.deliveries.drain() {
        task.abort();
        metrics.subscriptions.dec();
    }
    let (code, reason) = driver
        .close
        .take()
        .unwrap_or((ErrorCode::None, "connection lost".into()));
    if code != ErrorCode::None {
        metrics
            .connection_errors
            .with_label_values(&[code.variant_name().unwrap_or("Unknown")])
            .inc();
        debug!(session = %session_id, ?code, %reason, "closing connection");
    }
    if let Some(transport) = driver.transport.take() {
        transport.close(code, &reason).await;
    }
    metrics.connections.dec();
}

struct Driver<T: Transport> {
    shared: Arc<Shared>,
    session: Session,
    transport: Option<T>,
    pending: Pending,
    deliveries: HashMap<SubscriptionId, JoinHandle<()>>,
    /// Deliveries that ended on their own report here.
    ended: (mpsc::Sender<Ended>, mpsc::Receiver<Ended>),
    /// Set once the connection must close, with the code to close with.
    close: Option<(ErrorCode, String)>,
    lanes: LaneLedger,
    /// Lanes to finish once the current actions are performed.
    finish_after_flush: Vec<LaneId>,
}

impl<T: Transport> Driver<T> {
    async fn run(&mut self, mut inbound: mpsc::Receiver<Inbound>) {
        let mut shutdown = self.shared.shutdown.clone();
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        loop {
            self.perform_actions().await;
            for lane in std::mem::take(&mut self.finish_after_flush) {
                self.finish_lane(lane);
            }
            if self.close.is_some() {
                return;
            }
            let timeout = self.session.poll_timeout();
            tokio::select! {
                message = inbound.recv() => match message {
                    Some(Inbound::Frame { lane, frame }) => {
                        self.session.handle_frame(lane, &frame, Now::system());
                    }
                    Some(Inbound::Invalid(error)) => self.session.handle_decode_error(&error),
                    Some(Inbound::ControlFinished) => self.session.handle_control_finished(),
                    Some(Inbound::Datagram(datagram)) => {
                        self.session.handle_datagram(&datagram, Now::system());
                    }
                    Some(Inbound::LaneFinished(lane)) => {
                        // The lane's earlier frames were handled, and their
                        // immediate answers queued, in earlier iterations.
                        if self.lanes.client_finished(lane) {
                            self.finish_lane(lane);
                        }
                    }
                    None => return,
                },
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.complete(done),
                Some((id, end)) = self.ended.1.recv() => self.delivery_ended(id, end),
                () = sleep_until(timeout), if timeout.is_some() => {
                    self.session.handle_timeout(Now::system());
                }
                changed = shutdown.changed(), if grace_deadline.is_none() => {
                    if changed.is_err() || *shutdown.borrow() {
                        self.session.go_away(self.shared.reconnect_after_ms);
                        grace_deadline = Some(tokio::time::Instant::now() + self.shared.shutdown_grace);
                    }
                }
                () = tokio::time::sleep_until(grace_deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if grace_deadline.is_some() =>
                {
                    self.close = Some((ErrorCode::GoingAway, "server shut down".into()));
                    return;
                }
            }
        }
    }

    fn finish_lane(&mut self, lane: LaneId) {
        if let Some(transport) = self.transport.as_mut() {
            transport.finish_lane(lane);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
