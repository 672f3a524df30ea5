//! Drives one client's [`Session`] over any transport: performs the
//! session's actions (store, hub, subscriptions) and feeds their outcomes
//! back. No protocol rule lives here or in the transports; they live in the
//! session, so every transport enforces the same ones.

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
use quiver_session::{
    Action, Authenticator, ChannelOptions, ChannelRules, HookCall, HookVerdict, LaneId, Limits,
    Now, Session, StartAt, SubscriptionId,
};
use quiver_storage::{Appended, StoreError, StoredMessage};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::delivery::{
    DeliveryContext, DeliveryEnd, FrameSink, PresenceMember, SinkClosed, deliver,
};
use crate::hooks::{HookContext, HookKind, Hooks};
use crate::pipeline::{PublishPipeline, check_edit_target};
use crate::tracking::{DatagramOut, Tracker, WatchRequest, watch};

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

/// Requests still unanswered per lane, so a lane the client finished is
/// finished on the server's side right after its last response.
#[derive(Default)]
struct LaneLedger {
    in_flight: HashMap<LaneId, usize>,
    finished: Vec<LaneId>,
}

impl LaneLedger {
    fn started(&mut self, lane: LaneId) {
        // The control lane lives as long as the connection: no bookkeeping
        // on the common path.
        if lane == LaneId::CONTROL {
            return;
        }
        *self.in_flight.entry(lane).or_default() += 1;
    }

    /// Records an answered request; true when the lane can now be finished.
    fn answered(&mut self, lane: LaneId) -> bool {
        if let Some(count) = self.in_flight.get_mut(&lane) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(&lane);
                return self.take_finished(lane);
            }
        }
        false
    }

    /// Records that the client finished the lane; true when nothing is owed.
    fn client_finished(&mut self, lane: LaneId) -> bool {
        if self.in_flight.contains_key(&lane) {
            self.finished.push(lane);
            false
        } else {
            true
        }
    }

    fn take_finished(&mut self, lane: LaneId) -> bool {
        let before = self.finished.len();
        self.finished.retain(|l| *l != lane);
        self.finished.len() != before
    }
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

    async fn perform_actions(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Send { lane, frame } => {
                    let Some(transport) = self.transport.as_mut() else {
                        return;
                    };
                    if transport.send(lane, frame).is_err() {
                        self.close = Some((
                            ErrorCode::SlowConsumer,
                            "client is not reading its responses".into(),
                        ));
                        return;
                    }
                }
                Action::Hook(call) => {
                    let verdict = match self.hook_future(&call) {
                        None => HookVerdict::Allow,
                        Some(future) => future.await,
                    };
                    self.session.hook_completed(call, verdict);
                }
                Action::Authenticated { tenant, user } => {
                    debug!(%tenant, %user, "authenticated");
                }
                Action::Publish {
                    lane,
                    request_id,
                    message,
                } => {
                    let received = Instant::now();
                    self.lanes.started(lane);
                    if let Some(edit) = message.edit {
                        self.submit_edit(lane, request_id, received, edit.target, message);
                        continue;
                    }
                    // Waits while the pipeline is full: the connection stops
                    // reading, and QUIC flow control slows the client down.
                    let receipt = self.shared.pipeline.submit(message).await;
                    self.pending.push(Box::pin(async move {
                        let result = receipt.await.unwrap_or(Err(StoreError::Closed));
                        Completion::Published {
                            lane,
                            request_id,
                            received,
                            result,
                        }
                    }));
                }
                Action::History {
                    lane,
                    request_id,
                    channel,
                    range,
                } => {
                    self.lanes.started(lane);
                    let store = self.shared.delivery.store.clone();
                    self.pending.push(Box::pin(async move {
                        let result = store.read(&channel, range).await;
                        let page_limit = range.limit.saturating_sub(1);
                        Completion::History {
                            lane,
                            request_id,
                            page_limit,
                            result,
                        }
                    }));
                }
                Action::Subscribe {
                    lane,
                    request_id,
                    subscription_id,
                    channel,
                    start,
                    options,
                    max_rate,
                } => {
                    let started = if options.is_tracking() {
                        let request = WatchRequest {
                            channel,
                            subscription_id,
                            max_rate,
                            presence: self
                                .presence_member(subscription_id, options)
                                .map(|member| (self.shared.delivery.presence.clone(), member)),
                        };
                        self.start_watch(subscription_id, request)
                    } else {
                        self.start_delivery(subscription_id, channel, start, options)
                    };
                    self.await_started(lane, request_id, subscription_id, started);
                }
                Action::Track { channel, position } => {
                    let ttl = self
                        .shared
                        .channels
                        .options(&channel.channel)
                        .position_history_ttl;
                    self.shared.tracker.update(channel, position, ttl);
                }
                Action::TrackDropped(reason) => {
                    self.shared
                        .delivery
                        .metrics
                        .positions_dropped
                        .with_label_values(&[reason.label()])
                        .inc();
                }
                Action::Alert { message } => {
                    // Nobody waits for an alert's ack; a failure is logged.
                    let receipt = self.shared.pipeline.submit(message).await;
                    tokio::spawn(async move {
                        if let Ok(Err(error)) = receipt.await {
                            tracing::warn!(%error, "publishing a plugin's alert failed");
                        }
                    });
                }
                Action::Unsubscribe { subscription_id } => {
                    if let Some(task) = self.deliveries.remove(&subscription_id) {
                        // Dropping the task's sink finishes the stream.
                        task.abort();
                        self.shared.delivery.metrics.subscriptions.dec();
                    }
                }
                Action::Close { code, reason } => {
                    self.close = Some((code, reason));
                    return;
                }
            }
        }
    }

    /// An edit first reads its target, off this connection's path like a
    /// store read of history, then goes through the pipeline like a
    /// publish; a target that is no editable item is refused with NotFound.
    /// The lane owes the answer until either arrives.
    fn submit_edit(
        &mut self,
        lane: LaneId,
        request_id: u64,
        received: Instant,
        target: u64,
        message: quiver_storage::NewMessage,
    ) {
        let store = self.shared.delivery.store.clone();
        let pipeline = self.shared.pipeline.clone();
        self.pending.push(Box::pin(async move {
            let result = match check_edit_target(&*store, &message.channel, target).await {
                Ok(true) => {
                    let receipt = pipeline.submit(message).await;
                    receipt.await.unwrap_or(Err(StoreError::Closed))
                }
                Ok(false) => {
                    return Completion::EditTargetMissing {
                        lane,
                        request_id,
                        target,
                    };
                }
                Err(error) => Err(error),
            };
            Completion::Published {
                lane,
                request_id,
                received,
                result,
            }
        }));
    }

    /// Asks the tenant's plugins, awaiting them inline so this connection's
    /// requests keep their order; without a plugin for the hook nothing is
    /// awaited.
    fn hook_future<'c>(
        &self,
        call: &'c HookCall,
    ) -> Option<impl Future<Output = HookVerdict> + Send + 'c> {
        let identity = self.session.identity()?;
        if !self
            .shared
            .hooks
            .wants(&identity.tenant, HookKind::of(call))
        {
            return None;
        }
        // Owned copies, so the await below holds no borrow of the driver.
        let hooks = self.shared.hooks.clone();
        let identity = identity.clone();
        let session_id = self.session.session_id().clone();
        let client = self.session.client().clone();
        Some(async move {
            let context = HookContext {
                tenant: &identity.tenant,
                user: &identity.user,
                session_id: &session_id,
                client: &client,
                claims_json: &identity.claims_json,
            };
            hooks.run(context, call).await
        })
    }

    /// Starts a message subscription's delivery task; the receiver learns
    /// the channel head once it is attached.
    fn start_delivery(
        &mut self,
        id: SubscriptionId,
        channel: quiver_storage::ChannelKey,
        start: StartAt,
        options: ChannelOptions,
    ) -> oneshot::Receiver<Result<u64, StoreError>> {
        let (started, started_rx) = oneshot::channel();
        let Some(transport) = self.transport.as_ref() else {
            return started_rx;
        };
        let presence = self.presence_member(id, options);
        let open = transport.open_subscription(id, &channel.channel);
        let ctx = self.shared.delivery.clone();
        let ended = self.ended.0.clone();
        let task = tokio::spawn(async move {
            let end = match open.await {
                Ok(sink) => deliver(ctx, channel, start, presence, sink, started).await,
                Err(SinkClosed) => DeliveryEnd::SinkClosed,
            };
            let _ = ended.send((id, end)).await;
        });
        self.deliveries.insert(id, task);
        started_rx
    }

    /// Who a subscription is in its channel's presence, if the channel has it.
    fn presence_member(
        &self,
        id: SubscriptionId,
        options: ChannelOptions,
    ) -> Option<PresenceMember> {
        let identity = self.session.identity().filter(|_| options.presence)?;
        Some(PresenceMember {
            subscription_id: id,
            user: identity.user.clone(),
        })
    }

    /// Starts a tracking subscription's watcher.
    fn start_watch(
        &mut self,
        id: SubscriptionId,
        request: WatchRequest,
    ) -> oneshot::Receiver<Result<u64, StoreError>> {
        let (started, started_rx) = oneshot::channel();
        let Some(transport) = self.transport.as_ref() else {
            return started_rx;
        };
        let open = transport.open_subscription(id, &request.channel.channel);
        let datagrams = transport.datagrams();
        let tracker = self.shared.tracker.clone();
        let ended = self.ended.0.clone();
        let task = tokio::spawn(async move {
            let end = match open.await {
                Ok(sink) => watch(tracker, request, sink, datagrams, started).await,
                Err(SinkClosed) => DeliveryEnd::SinkClosed,
            };
            let _ = ended.send((id, end)).await;
        });
        self.deliveries.insert(id, task);
        started_rx
    }

    /// Answers the Subscribe once the subscription's task has started.
    fn await_started(
        &mut self,
        lane: LaneId,
        request_id: u64,
        id: SubscriptionId,
        started: oneshot::Receiver<Result<u64, StoreError>>,
    ) {
        self.lanes.started(lane);
        self.shared.delivery.metrics.subscriptions.inc();
        self.pending.push(Box::pin(async move {
            let result = started.await.unwrap_or(Err(StoreError::Closed));
            Completion::Subscribed {
                lane,
                request_id,
                id,
                result,
            }
        }));
    }

    fn complete(&mut self, done: Completion) {
        let lane = match &done {
            Completion::Published { lane, .. }
            | Completion::History { lane, .. }
            | Completion::Subscribed { lane, .. }
            | Completion::EditTargetMissing { lane, .. } => *lane,
        };
        match done {
            Completion::Published {
                lane,
                request_id,
                received,
                result,
            } => {
                self.shared
                    .delivery
                    .metrics
                    .publish_duration
                    .observe(received.elapsed().as_secs_f64());
                self.session.publish_completed(lane, request_id, result);
            }
            Completion::History {
                lane,
                request_id,
                page_limit,
                result,
            } => {
                self.session
                    .history_completed(lane, request_id, page_limit, result);
            }
            Completion::Subscribed {
                lane,
                request_id,
                id,
                result,
            } => {
                self.session
                    .subscribe_completed(lane, request_id, id, result);
            }
            Completion::EditTargetMissing {
                lane,
                request_id,
                target,
            } => self.session.edit_target_missing(lane, request_id, target),
        }
        // The response is queued when the session's actions are performed,
        // at the top of the next loop turn; the lane is finished after that.
        if self.lanes.answered(lane) {
            self.finish_after_flush.push(lane);
        }
    }

    fn finish_lane(&mut self, lane: LaneId) {
        if let Some(transport) = self.transport.as_mut() {
            transport.finish_lane(lane);
        }
    }

    fn delivery_ended(&mut self, id: SubscriptionId, end: DeliveryEnd) {
        if self.deliveries.remove(&id).is_none() {
            return;
        }
        self.shared.delivery.metrics.subscriptions.dec();
        match end {
            DeliveryEnd::SlowConsumer => {
                info!(subscription = id, "slow consumer disconnected");
                self.session.slow_consumer(id);
            }
            DeliveryEnd::SinkClosed => self.session.subscription_ended(id),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
