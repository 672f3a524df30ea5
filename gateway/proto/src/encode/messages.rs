//! Frames that carry stored messages: Message (on subscription streams),
//! HistoryPage, and the StreamHeader that opens a subscription stream.

use bytes::Bytes;
use flatbuffers::WIPOffset;

use super::{Encoder, HeaderPair};
use crate::{fb, message_id_from_u128};

/// A message to encode, borrowed from wherever the server keeps it, so
/// neither payloads nor headers are cloned to build a frame.
///
/// `headers` is anything iterable over [`HeaderPair`]s: `&Vec<(String,
/// String)>`, `[("content-type", "text/plain")]`,
/// `stored.headers.iter().map(|h| (h.name.as_str(), h.value.as_str()))`, or
/// [`NO_HEADERS`](crate::NO_HEADERS) for none.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a, H> {
    /// Position in the channel: 1 for the first message, then +1.
    pub offset: u64,
    /// The ULID as one `u128` (see [`crate::message_id_to_u128`]).
    pub id: u128,
    /// The publisher's user id.
    pub sender: &'a str,
    /// When the server accepted the message, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The application payload, opaque to Quiver.
    pub payload: &'a [u8],
    /// The application headers.
    pub headers: H,
    /// Item or edit, and the item's current state.
    pub meta: MessageMeta,
}

/// What a message is in its channel's log: an item, or an edit of the item
/// at `target`; and, for items read from history, their current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageMeta {
    pub kind: fb::MessageKind,
    /// The edited item's offset; 0 for items.
    pub target: u64,
    pub state: fb::ItemState,
}

impl MessageMeta {
    /// A plain item, never edited: what every chat message is.
    pub const ITEM: MessageMeta = MessageMeta {
        kind: fb::MessageKind::Item,
        target: 0,
        state: fb::ItemState::Original,
    };
}

impl Default for MessageMeta {
    fn default() -> Self {
        Self::ITEM
    }
}

impl Encoder {
    /// `Message`: one delivered message on a subscription stream.
    ///
    /// A `Message` frame names no subscription, so the server can encode a
    /// message once and write clones of the same `Bytes` to every
    /// subscriber's stream. `message.headers` is cloned to be iterated,
    /// which is cheap for references and borrowing iterators.
    pub fn message<H>(&mut self, message: &MessageRef<'_, H>) -> Bytes
    where
        H: IntoIterator + Clone,
        H::Item: HeaderPair,
    {
        let message = self.create_message(MessageRef {
            headers: message.headers.clone(),
            ..*message
        });
        self.finish(fb::Body::Message, message.as_union_value())
    }

    /// `HistoryPage`: the answer to `HistoryRequest` `request_id`, with
    /// the messages in the order given (the request's direction).
    pub fn history_page<'m, M, H>(&mut self, request_id: u64, messages: M, has_more: bool) -> Bytes
    where
        M: IntoIterator<Item = MessageRef<'m, H>>,
        H: IntoIterator,
        H::Item: HeaderPair,
    {
        self.message_scratch.clear();
        for message in messages {
            let message = self.create_message(message);
            self.message_scratch.push(message);
        }
        let messages = self.fbb.create_vector(&self.message_scratch);
        let body = fb::HistoryPage::create(
            &mut self.fbb,
            &fb::HistoryPageArgs {
                request_id,
                messages: Some(messages),
                has_more,
            },
        );
        self.finish(fb::Body::HistoryPage, body.as_union_value())
    }

    /// `StreamHeader`: the first frame of the unidirectional stream that
    /// carries the subscription `subscription_id`.
    pub fn stream_header(&mut self, subscription_id: u32, channel: &str) -> Bytes {
        let channel = self.fbb.create_string(channel);
        let body = fb::StreamHeader::create(
            &mut self.fbb,
            &fb::StreamHeaderArgs {
                subscription_id,
                channel: Some(channel),
            },
        );
        self.finish(fb::Body::StreamHeader, body.as_union_value())
    }

    /// Writes one `Message` table (not a frame).
    fn create_message<H>(&mut self, message: MessageRef<'_, H>) -> WIPOffset<fb::Message<'static>>
    where
        H: IntoIterator,
        H::Item: HeaderPair,
    {
        let sender = self.fbb.create_string(message.sender);
        let payload = self.fbb.create_vector(message.payload);
        let headers = self.create_headers(message.headers);
        let id = message_id_from_u128(message.id);
        fb::Message::create(
            &mut self.fbb,
            &fb::MessageArgs {
                offset: message.offset,
                id: Some(&id),
                sender: Some(sender),
                timestamp_ms: message.timestamp_ms,
                payload: Some(payload),
                headers,
                kind: message.meta.kind,
                target: message.meta.target,
                state: message.meta.state,
            },
        )
    }

    /// `Presence`: `user` joined (or left) the channel of subscription
    /// `subscription_id`, and now has `connections` subscribed connections.
    pub fn presence(
        &mut self,
        subscription_id: u32,
        user: &str,
        joined: bool,
        connections: u32,
    ) -> Bytes {
        let user = self.fbb.create_string(user);
        let body = fb::Presence::create(
            &mut self.fbb,
            &fb::PresenceArgs {
                subscription_id,
                user: Some(user),
                joined,
                connections,
            },
        );
        self.finish(fb::Body::Presence, body.as_union_value())
    }
}
