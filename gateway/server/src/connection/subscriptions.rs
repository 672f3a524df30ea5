//! Starting a subscription's task (message delivery or a tracking watch),
//! answering its Subscribe once the task is attached, and its end.

use quiver_session::{ChannelOptions, LaneId, StartAt, SubscriptionId};
use quiver_storage::StoreError;
use tokio::sync::oneshot;
use tracing::info;

use super::{Completion, Driver, Transport};
use crate::delivery::{DeliveryEnd, PresenceMember, SinkClosed, deliver};
use crate::tracking::{WatchRequest, watch};

impl<T: Transport> Driver<T> {
    /// Starts a message subscription's delivery task; the receiver learns
    /// the channel head once it is attached.
    pub(super) fn start_delivery(
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
    pub(super) fn presence_member(
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
    pub(super) fn start_watch(
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
    pub(super) fn await_started(
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

    pub(super) fn delivery_ended(&mut self, id: SubscriptionId, end: DeliveryEnd) {
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
