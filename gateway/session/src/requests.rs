//! Client requests after the handshake: validation, authorization and
//! limits, turned into actions for the runtime.

use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::fb::{self, ErrorCode};
use quiver_storage::{ChannelKey, Direction, Header, NewMessage, ReadRange};

use crate::action::{Action, LaneId};
use crate::auth::Identity;
use crate::channel::validate_channel;
use crate::hooks::HookCall;
use crate::session::{Now, Phase, Session};

/// Longest idempotency key accepted, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// Which permission of the token a request needs.
#[derive(Clone, Copy)]
enum Access {
    Subscribe,
    Publish,
}

impl Session {
    /// Common checks of every request naming a channel: the connection may
    /// take requests, the name is valid, the token allows it. Refuses the
    /// request and returns `None` when a check fails.
    fn admit_channel(
        &mut self,
        lane: LaneId,
        request_id: u64,
        channel: Option<&str>,
        access: Access,
    ) -> Option<ChannelKey> {
        if request_id == 0 {
            self.refuse_invalid(
                lane,
                request_id,
                "request_id 0 is reserved; number requests from 1",
            );
            return None;
        }
        if self.phase == Phase::Draining {
            self.refuse(
                lane,
                request_id,
                ErrorCode::GoingAway,
                "server is shutting down; reconnect and retry".into(),
                true,
                0,
            );
            return None;
        }
        let Some(channel) = channel else {
            self.refuse_invalid(lane, request_id, "channel is missing");
            return None;
        };
        if let Err(why) = validate_channel(channel) {
            self.refuse(lane, request_id, ErrorCode::InvalidChannel, why, false, 0);
            return None;
        }
        let identity: &Identity = self.identity.as_ref()?;
        let allowed = match access {
            Access::Subscribe => identity.subscribe.allows(channel),
            Access::Publish => identity.publish.allows(channel),
        };
        if !allowed {
            let verb = match access {
                Access::Subscribe => "subscribe to",
                Access::Publish => "publish to",
            };
            let message = format!("token does not allow you to {verb} {channel:?}");
            self.refuse(lane, request_id, ErrorCode::Forbidden, message, false, 0);
            return None;
        }
        Some(ChannelKey::new(identity.tenant.clone(), channel))
    }

    pub(crate) fn handle_publish(
        &mut self,
        lane: LaneId,
        frame: &Bytes,
        req: fb::Publish<'_>,
        now: Now,
    ) {
        let request_id = req.request_id();
        let Some(channel) = self.admit_channel(lane, request_id, req.channel(), Access::Publish)
        else {
            return;
        };
        let payload = req.payload().map_or(&[][..], |p| p.bytes());
        let mut size = payload.len();
        let mut headers = Vec::new();
        if let Some(list) = req.headers() {
            headers.reserve(list.len());
            for h in list {
                size += h.name().len() + h.value().len();
                headers.push(Header {
                    name: h.name().to_owned(),
                    value: h.value().to_owned(),
                });
            }
        }
        let max = self.limits.max_payload_bytes as usize;
        if size > max {
            let message = format!("payload and headers are {size} bytes; the limit is {max}");
            return self.refuse(
                lane,
                request_id,
                ErrorCode::PayloadTooLarge,
                message,
                false,
                0,
            );
        }
        let key = match req.key() {
            Some(k) if k.len() > MAX_KEY_BYTES => {
                let message = format!(
                    "idempotency key is {} bytes; the limit is {MAX_KEY_BYTES}",
                    k.len()
                );
                return self.refuse_invalid(lane, request_id, &message);
            }
            Some("") | None => None,
            Some(k) => Some(Arc::<str>::from(k)),
        };
        if let Some(bucket) = self.bucket.as_mut()
            && let Err(wait) = bucket.try_take(now.instant)
        {
            let retry_after_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
            let message = format!(
                "publish rate limit of {}/s exceeded; retry in {retry_after_ms} ms",
                self.limits.publish_rate_per_sec
            );
            return self.refuse(
                lane,
                request_id,
                ErrorCode::RateLimited,
                message,
                true,
                retry_after_ms,
            );
        }
        let Some(identity) = self.identity.as_ref() else {
            return;
        };
        let message = NewMessage {
            channel,
            id: self.ids.next(now.unix_ms),
            timestamp_ms: now.unix_ms,
            sender: identity.user.clone(),
            // A view into the received frame: the payload is never copied
            // between the socket and the store or the subscribers.
            payload: frame.slice_ref(payload),
            headers,
            idempotency_key: key,
        };
        self.actions.push_back(Action::Hook(HookCall::Publish {
            lane,
            request_id,
            message,
        }));
    }

    pub(crate) fn handle_subscribe(&mut self, lane: LaneId, req: fb::Subscribe<'_>) {
        let request_id = req.request_id();
        let Some(channel) = self.admit_channel(lane, request_id, req.channel(), Access::Subscribe)
        else {
            return;
        };
        if self.by_channel.contains_key(&channel.channel) {
            let message = format!(
                "already subscribed to {:?} on this connection",
                &*channel.channel
            );
            return self.refuse(
                lane,
                request_id,
                ErrorCode::AlreadySubscribed,
                message,
                false,
                0,
            );
        }
        let max = self.limits.max_subscriptions as usize;
        if self.by_id.len() >= max {
            let message = format!("this connection already holds {max} subscriptions, the limit");
            return self.refuse(
                lane,
                request_id,
                ErrorCode::TooManySubscriptions,
                message,
                false,
                0,
            );
        }
        let subscription_id = self.next_subscription_id;
        self.next_subscription_id = self.next_subscription_id.wrapping_add(1).max(1);
        self.by_id.insert(subscription_id, channel.channel.clone());
        self.by_channel
            .insert(channel.channel.clone(), subscription_id);
        self.actions.push_back(Action::Hook(HookCall::Subscribe {
            lane,
            request_id,
            subscription_id,
            channel,
            since: req.since(),
        }));
    }

    pub(crate) fn handle_unsubscribe(&mut self, lane: LaneId, req: fb::Unsubscribe<'_>) {
        let request_id = req.request_id();
        let subscription_id = req.subscription_id();
        if request_id == 0 {
            return self.refuse_invalid(
                lane,
                request_id,
                "request_id 0 is reserved; number requests from 1",
            );
        }
        if !self.remove_subscription(subscription_id) {
            let message = format!("no subscription {subscription_id} on this connection");
            return self.refuse(
                lane,
                request_id,
                ErrorCode::NotSubscribed,
                message,
                false,
                0,
            );
        }
        self.actions
            .push_back(Action::Unsubscribe { subscription_id });
        let frame = self.encoder.unsubscribed(request_id, subscription_id);
        self.send(lane, frame);
    }

    pub(crate) fn handle_history(&mut self, lane: LaneId, req: fb::HistoryRequest<'_>) {
        let request_id = req.request_id();
        let Some(channel) = self.admit_channel(lane, request_id, req.channel(), Access::Subscribe)
        else {
            return;
        };
        let limit = match req.limit() {
            0 => return self.refuse_invalid(lane, request_id, "limit must be at least 1"),
            n => n.min(self.limits.max_history_page),
        };
        let direction = match req.direction() {
            fb::Direction::Forward => Direction::Forward,
            fb::Direction::Backward => Direction::Backward,
            other => {
                let message = format!("unknown direction {}", other.0);
                return self.refuse_invalid(lane, request_id, &message);
            }
        };
        let range = ReadRange {
            after: req.after(),
            before: req.before(),
            // One extra message tells whether another page exists.
            limit: limit as usize + 1,
            direction,
        };
        self.actions.push_back(Action::History {
            lane,
            request_id,
            channel,
            range,
        });
    }

    pub(crate) fn remove_subscription(&mut self, subscription_id: u32) -> bool {
        match self.by_id.remove(&subscription_id) {
            Some(channel) => {
                self.by_channel.remove(&channel);
                true
            }
            None => false,
        }
    }

    fn refuse_invalid(&mut self, lane: LaneId, request_id: u64, message: &str) {
        self.refuse(
            lane,
            request_id,
            ErrorCode::InvalidRequest,
            message.into(),
            false,
            0,
        );
    }
}
