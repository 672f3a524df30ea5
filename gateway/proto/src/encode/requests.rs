//! Requests and their direct responses: Subscribe / Subscribed,
//! Unsubscribe / Unsubscribed, Publish / PublishAck, HistoryRequest.

use bytes::Bytes;

use super::{Encoder, HeaderPair};
use crate::SubscribeOptions;
use crate::{fb, message_id_from_u128};

impl Encoder {
    /// `Subscribe`: live from the head when `since` is `None`, otherwise
    /// replay every message with an offset greater than `since` first.
    pub fn subscribe(&mut self, request_id: u64, channel: &str, since: Option<u64>) -> Bytes {
        let options = SubscribeOptions {
            since,
            ..SubscribeOptions::default()
        };
        self.subscribe_with(request_id, channel, &options)
    }

    /// `Subscribe` with every option.
    pub fn subscribe_with(
        &mut self,
        request_id: u64,
        channel: &str,
        options: &SubscribeOptions,
    ) -> Bytes {
        let channel = self.fbb.create_string(channel);
        let body = fb::Subscribe::create(
            &mut self.fbb,
            &fb::SubscribeArgs {
                request_id,
                channel: Some(channel),
                since: options.since,
                last: options.last,
                max_rate: options.max_rate,
            },
        );
        self.finish(fb::Body::Subscribe, body.as_union_value())
    }

    /// `Edit`: update (`delete == false`) or delete the item at `target`.
    #[allow(clippy::too_many_arguments)]
    pub fn edit<H>(
        &mut self,
        request_id: u64,
        channel: &str,
        target: u64,
        delete: bool,
        payload: &[u8],
        headers: H,
        key: Option<&str>,
    ) -> Bytes
    where
        H: IntoIterator,
        H::Item: HeaderPair,
    {
        let channel = self.fbb.create_string(channel);
        let payload = (!payload.is_empty()).then(|| self.fbb.create_vector(payload));
        let headers = self.create_headers(headers);
        let key = key.map(|key| self.fbb.create_string(key));
        let body = fb::Edit::create(
            &mut self.fbb,
            &fb::EditArgs {
                request_id,
                channel: Some(channel),
                target,
                delete,
                payload,
                headers,
                key,
            },
        );
        self.finish(fb::Body::Edit, body.as_union_value())
    }

    /// `Subscribed`: the subscription `subscription_id` is set up;
    /// `head_offset` is the channel's last offset at that moment.
    pub fn subscribed(
        &mut self,
        request_id: u64,
        subscription_id: u32,
        channel: &str,
        head_offset: u64,
    ) -> Bytes {
        let channel = self.fbb.create_string(channel);
        let body = fb::Subscribed::create(
            &mut self.fbb,
            &fb::SubscribedArgs {
                request_id,
                subscription_id,
                channel: Some(channel),
                head_offset,
            },
        );
        self.finish(fb::Body::Subscribed, body.as_union_value())
    }

    /// `Unsubscribe`: stop the subscription `subscription_id`.
    pub fn unsubscribe(&mut self, request_id: u64, subscription_id: u32) -> Bytes {
        let body = fb::Unsubscribe::create(
            &mut self.fbb,
            &fb::UnsubscribeArgs {
                request_id,
                subscription_id,
            },
        );
        self.finish(fb::Body::Unsubscribe, body.as_union_value())
    }

    /// `Unsubscribed`: the subscription is stopped and its stream finished.
    pub fn unsubscribed(&mut self, request_id: u64, subscription_id: u32) -> Bytes {
        let body = fb::Unsubscribed::create(
            &mut self.fbb,
            &fb::UnsubscribedArgs {
                request_id,
                subscription_id,
            },
        );
        self.finish(fb::Body::Unsubscribed, body.as_union_value())
    }

    /// `Publish`: append `payload` to `channel`. `headers` is anything
    /// iterable over [`HeaderPair`]s (`[("k", "v")]`, `&Vec<(String, String)>`,
    /// a mapping iterator, ...). `key` is the idempotency key.
    pub fn publish<H>(
        &mut self,
        request_id: u64,
        channel: &str,
        payload: &[u8],
        headers: H,
        key: Option<&str>,
    ) -> Bytes
    where
        H: IntoIterator,
        H::Item: HeaderPair,
    {
        let channel = self.fbb.create_string(channel);
        let payload = self.fbb.create_vector(payload);
        let headers = self.create_headers(headers);
        let key = key.map(|key| self.fbb.create_string(key));
        let body = fb::Publish::create(
            &mut self.fbb,
            &fb::PublishArgs {
                request_id,
                channel: Some(channel),
                payload: Some(payload),
                headers,
                key,
            },
        );
        self.finish(fb::Body::Publish, body.as_union_value())
    }

    /// `PublishAck`: the message is durable under `offset` with ULID `id`;
    /// `duplicate` when an earlier publish with the same key was found.
    pub fn publish_ack(
        &mut self,
        request_id: u64,
        offset: u64,
        id: u128,
        duplicate: bool,
    ) -> Bytes {
        let id = message_id_from_u128(id);
        let body = fb::PublishAck::create(
            &mut self.fbb,
            &fb::PublishAckArgs {
                request_id,
                offset,
                id: Some(&id),
                duplicate,
                dropped: false,
            },
        );
        self.finish(fb::Body::PublishAck, body.as_union_value())
    }

    /// `PublishAck` for a publish a tenant plugin dropped: accepted, but
    /// neither stored nor delivered, so it has no offset or id.
    pub fn publish_dropped(&mut self, request_id: u64) -> Bytes {
        let id = message_id_from_u128(0);
        let body = fb::PublishAck::create(
            &mut self.fbb,
            &fb::PublishAckArgs {
                request_id,
                offset: 0,
                id: Some(&id),
                duplicate: false,
                dropped: true,
            },
        );
        self.finish(fb::Body::PublishAck, body.as_union_value())
    }

    /// `HistoryRequest`: up to `limit` stored messages of `channel` with
    /// offsets strictly between `after` and `before`, walked in `direction`.
    pub fn history_request(
        &mut self,
        request_id: u64,
        channel: &str,
        limit: u32,
        before: Option<u64>,
        after: Option<u64>,
        direction: fb::Direction,
    ) -> Bytes {
        let channel = self.fbb.create_string(channel);
        let body = fb::HistoryRequest::create(
            &mut self.fbb,
            &fb::HistoryRequestArgs {
                request_id,
                channel: Some(channel),
                limit,
                before,
                after,
                direction,
            },
        );
        self.finish(fb::Body::HistoryRequest, body.as_union_value())
    }
}
