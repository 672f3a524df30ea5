//! Tenant plugin hooks. Before the session admits a connection, a
//! subscription or a publish, it asks the runtime to run the tenant's
//! plugins (`Action::Hook`) and continues with their verdict
//! (`Session::hook_completed`). The runtime must complete a hook before it
//! feeds the session its next input, which keeps each connection's
//! requests in order.

use bytes::Bytes;
use quiver_proto::fb::ErrorCode;
use std::sync::Arc;

use quiver_storage::{ChannelKey, Header, NewMessage, Position};

use crate::action::{Action, LaneId, StartAt, SubscriptionId, TrackDrop};
use crate::channel::{ChannelOptions, validate_channel};
use crate::session::{Phase, Session};

/// What the plugins are asked to decide.
#[derive(Debug)]
pub enum HookCall {
    /// May this (already authenticated) user connect? The identity is
    /// `Session::identity()`.
    Connect,
    /// May the user subscribe to this channel?
    Subscribe {
        lane: LaneId,
        request_id: u64,
        subscription_id: SubscriptionId,
        channel: ChannelKey,
        start: StartAt,
        options: ChannelOptions,
        max_rate: u32,
    },
    /// May this message be published, and in what form? Also asked for
    /// updates of items (`message.edit` set); never for deletions.
    Publish {
        lane: LaneId,
        request_id: u64,
        message: NewMessage,
    },
    /// A position on a tracking channel: accept, drop, or raise an alert.
    Track {
        channel: ChannelKey,
        position: Position,
    },
}

/// The plugins' decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookVerdict {
    Allow,
    /// Publish only: store and deliver this payload and these headers.
    Rewrite {
        payload: Bytes,
        headers: Vec<Header>,
    },
    /// Publish only: acknowledge without storing or delivering.
    Drop,
    /// Refused, for this reason.
    Deny(String),
    /// A plugin failed and its failure policy refuses the request.
    Failed(String),
    /// Track only: accept the position and publish these alerts, each to
    /// its channel of the same tenant.
    Alerts(Vec<Alert>),
}

/// A message an `on-track` plugin raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub channel: String,
    pub payload: Bytes,
}

impl Session {
    /// Continues the request a hook was asked about.
    pub fn hook_completed(&mut self, call: HookCall, verdict: HookVerdict) {
        match call {
            HookCall::Connect => self.connect_decided(verdict),
            HookCall::Subscribe {
                lane,
                request_id,
                subscription_id,
                channel,
                start,
                options,
                max_rate,
            } => match verdict {
                HookVerdict::Allow => self.actions.push_back(Action::Subscribe {
                    lane,
                    request_id,
                    subscription_id,
                    channel,
                    start,
                    options,
                    max_rate,
                }),
                refusal => {
                    self.remove_subscription(subscription_id);
                    self.refuse_by_plugin(lane, request_id, refusal);
                }
            },
            HookCall::Publish {
                lane,
                request_id,
                mut message,
            } => match verdict {
                HookVerdict::Allow => self.actions.push_back(Action::Publish {
                    lane,
                    request_id,
                    message,
                }),
                HookVerdict::Rewrite { payload, headers } => {
                    let size = payload.len()
                        + headers
                            .iter()
                            .map(|h| h.name.len() + h.value.len())
                            .sum::<usize>();
                    let max = self.limits.max_payload_bytes as usize;
                    if size > max {
                        let reason = format!(
                            "a plugin rewrote the message to {size} bytes, over the limit of {max}"
                        );
                        return self.refuse_by_plugin(
                            lane,
                            request_id,
                            HookVerdict::Failed(reason),
                        );
                    }
                    message.payload = payload;
                    message.headers = headers;
                    self.actions.push_back(Action::Publish {
                        lane,
                        request_id,
                        message,
                    });
                }
                HookVerdict::Drop => {
                    let frame = self.encoder.publish_dropped(request_id);
                    self.send(lane, frame);
                }
                refusal => self.refuse_by_plugin(lane, request_id, refusal),
            },
            HookCall::Track { channel, position } => self.track_decided(channel, position, verdict),
        }
    }

    fn track_decided(&mut self, channel: ChannelKey, position: Position, verdict: HookVerdict) {
        match verdict {
            HookVerdict::Allow | HookVerdict::Rewrite { .. } => {}
            HookVerdict::Alerts(alerts) => {
                for alert in alerts {
                    self.raise_alert(alert, position.timestamp_ms);
                }
            }
            HookVerdict::Drop | HookVerdict::Deny(_) | HookVerdict::Failed(_) => {
                return self
                    .actions
                    .push_back(Action::TrackDropped(TrackDrop::Plugin));
            }
        }
        self.actions.push_back(Action::Track { channel, position });
    }

    fn raise_alert(&mut self, alert: Alert, timestamp_ms: u64) {
        if let Err(why) = validate_channel(&alert.channel) {
            return tracing::warn!(
                channel = %alert.channel,
                %why,
                "a plugin raised an alert on an invalid channel; alert dropped"
            );
        }
        let Some(identity) = self.identity.as_ref() else {
            return;
        };
        if self.channels.options(&alert.channel).is_tracking() {
            return tracing::warn!(
                channel = %alert.channel,
                "a plugin raised an alert on a tracking channel; alert dropped"
            );
        }
        let message = NewMessage {
            channel: ChannelKey::new(identity.tenant.clone(), alert.channel),
            id: self.ids.next(timestamp_ms),
            timestamp_ms,
            sender: Arc::clone(&identity.user),
            payload: alert.payload,
            headers: Vec::new(),
            idempotency_key: None,
            edit: None,
        };
        self.actions.push_back(Action::Alert { message });
    }

    fn connect_decided(&mut self, verdict: HookVerdict) {
        if self.phase != Phase::Authorizing {
            return;
        }
        match verdict {
            HookVerdict::Allow
            | HookVerdict::Rewrite { .. }
            | HookVerdict::Drop
            | HookVerdict::Alerts(_) => self.welcome(),
            HookVerdict::Deny(reason) => {
                self.fail(ErrorCode::Denied, format!("connection refused: {reason}"));
            }
            HookVerdict::Failed(reason) => self.fail(
                ErrorCode::PluginFailed,
                format!("connection refused, a plugin failed: {reason}"),
            ),
        }
    }

    fn refuse_by_plugin(&mut self, lane: LaneId, request_id: u64, verdict: HookVerdict) {
        let (code, message, retryable) = match verdict {
            HookVerdict::Deny(reason) => (ErrorCode::Denied, reason, false),
            HookVerdict::Failed(reason) => (
                ErrorCode::PluginFailed,
                format!("a plugin failed: {reason}"),
                true,
            ),
            // Only Deny and Failed are refusals.
            other => (
                ErrorCode::Internal,
                format!("unexpected plugin verdict {other:?}"),
                false,
            ),
        };
        self.refuse(lane, request_id, code, message, retryable, 0);
    }
}
