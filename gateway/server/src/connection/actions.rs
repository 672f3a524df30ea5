//! Performing the session's actions (sends, appends, reads, subscriptions,
//! positions) and feeding their outcomes back to it.

use std::time::Instant;

use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, HookVerdict};
use quiver_storage::StoreError;

use super::{Completion, Driver, Transport};
use tracing::debug;

use crate::tracking::WatchRequest;

impl<T: Transport> Driver<T> {
    pub(super) async fn perform_actions(&mut self) {
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

    pub(super) fn complete(&mut self, done: Completion) {
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
}
