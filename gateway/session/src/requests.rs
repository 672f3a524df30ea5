//! Client requests after the handshake: validation, authorization and
//! limits, turned into actions for the runtime.

use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::fb::{self, ErrorCode};
use quiver_storage::{ChannelKey, Direction, Edit, EditKind, Header, NewMessage, ReadRange};

use crate::action::{Action, LaneId, StartAt};
use crate::auth::Identity;
use crate::channel::validate_channel;
use crate::hooks::HookCall;
use crate::session::{Now, Phase, Session};

/// Longest idempotency key accepted, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// Which permission of the token a request needs.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    Subscribe,
    Publish,
}

impl Session {
    /// Common checks of every request naming a channel: the connection may
    /// take requests, the name is valid, the token allows it. Refuses the
    /// request and returns `None` when a check fails.
    pub(crate) fn admit_channel(
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
        let Some(channel) = self.admit_message_channel(lane, request_id, req.channel()) else {
            return;
        };
        let content = Content {
            payload: req.payload().map_or(&[][..], |p| p.bytes()),
            headers: req.headers(),
            key: req.key(),
        };
        let Some(message) = self.new_message(lane, request_id, frame, channel, content, None, now)
        else {
            return;
        };
        self.actions.push_back(Action::Hook(HookCall::Publish {
            lane,
            request_id,
            message,
        }));
    }

    /// An update or deletion of an earlier item: appended like a publish,
    /// with the same limits, after the on-publish hook for updates.
    pub(crate) fn handle_edit(&mut self, lane: LaneId, frame: &Bytes, req: fb::Edit<'_>, now: Now) {
        let request_id = req.request_id();
        let Some(channel) = self.admit_message_channel(lane, request_id, req.channel()) else {
            return;
        };
        let payload = req.payload().map_or(&[][..], |p| p.bytes());
        if req.target() == 0 {
            return self.refuse_invalid(
                lane,
                request_id,
                "target must be an item's offset (from 1)",
            );
        }
        let kind = if req.delete() {
            if !payload.is_empty() || req.headers().is_some_and(|h| !h.is_empty()) {
                return self.refuse_invalid(
                    lane,
                    request_id,
                    "a delete carries no payload or headers",
                );
            }
            EditKind::Delete
        } else {
            EditKind::Update
        };
        let content = Content {
            payload,
            headers: req.headers(),
            key: req.key(),
        };
        let edit = Edit {
            target: req.target(),
            kind,
        };
        let Some(message) =
            self.new_message(lane, request_id, frame, channel, content, Some(edit), now)
        else {
            return;
        };
        // A deletion has no content for a plugin to judge.
        let action = match kind {
            EditKind::Delete => Action::Publish {
                lane,
                request_id,
                message,
            },
            EditKind::Update => Action::Hook(HookCall::Publish {
                lane,
                request_id,
                message,
            }),
        };
        self.actions.push_back(action);
    }

    /// `admit_channel` for publishing, which only message channels take.
    fn admit_message_channel(
        &mut self,
        lane: LaneId,
        request_id: u64,
        channel: Option<&str>,
    ) -> Option<ChannelKey> {
        let channel = self.admit_channel(lane, request_id, channel, Access::Publish)?;
        if self.channels.options(&channel.channel).is_tracking() {
            let message = format!(
                "{:?} is a tracking channel: send positions with Track, not messages",
                &*channel.channel
            );
            self.refuse(
                lane,
                request_id,
                ErrorCode::WrongChannelKind,
                message,
                false,
                0,
            );
            return None;
        }
        Some(channel)
    }

    /// Checks a publish's or edit's size, key and rate, and builds the
    /// message to append.
    #[allow(clippy::too_many_arguments)]
    fn new_message(
        &mut self,
        lane: LaneId,
        request_id: u64,
        frame: &Bytes,
        channel: ChannelKey,
        content: Content<'_, '_>,
        edit: Option<Edit>,
        now: Now,
    ) -> Option<NewMessage> {
        let mut size = content.payload.len();
        let mut headers = Vec::new();
        if let Some(list) = content.headers {
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
            self.refuse(
                lane,
                request_id,
                ErrorCode::PayloadTooLarge,
                message,
                false,
                0,
            );
            return None;
        }
        let key = match content.key {
            Some(k) if k.len() > MAX_KEY_BYTES => {
                let message = format!(
                    "idempotency key is {} bytes; the limit is {MAX_KEY_BYTES}",
                    k.len()
                );
                self.refuse_invalid(lane, request_id, &message);
                return None;
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
            self.refuse(
                lane,
                request_id,
                ErrorCode::RateLimited,
                message,
                true,
                retry_after_ms,
            );
            return None;
        }
        let identity = self.identity.as_ref()?;
        Some(NewMessage {
            channel,
            id: self.ids.next(now.unix_ms),
            timestamp_ms: now.unix_ms,
            sender: identity.user.clone(),
            // A view into the received frame: the payload is never copied
            // between the socket and the store or the subscribers.
            payload: frame.slice_ref(content.payload),
            headers,
            idempotency_key: key,
            edit,
        })
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
        let options = *self.channels.options(&channel.channel);
        let start = match (req.since(), req.last()) {
            (Some(since), _) => StartAt::After(since),
            (None, 0) => StartAt::Head,
            (None, last) => StartAt::Last(last),
        };
        let max_rate = match req.max_rate() {
            0 => options.max_position_rate,
            asked => asked.min(options.max_position_rate),
        };
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
            start,
            options,
            max_rate,
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

    pub(crate) fn refuse_invalid(&mut self, lane: LaneId, request_id: u64, message: &str) {
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

/// What a publish or an edit carries, borrowed from its frame.
struct Content<'f, 'h> {
    payload: &'f [u8],
    headers: Option<flatbuffers::Vector<'h, flatbuffers::ForwardsUOffset<fb::Header<'h>>>>,
    key: Option<&'f str>,
}
