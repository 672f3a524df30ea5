//! Turning verified frames into the owned values users receive.
//!
//! Payloads are sliced out of the frame's `Bytes` rather than copied: a
//! subscriber fanning out many messages then pays for one receive buffer,
//! not a copy per message.

use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::{fb, message_id_to_u128};

use crate::types::{HistoryPage, ItemState, Message, MessageKind, PresenceEvent, PublishAck};

/// A `Bytes` for `part`, which should be a sub-slice of `frame`: a shared
/// slice of it when it is (always, for tables read from that frame), and a
/// copy otherwise, so a broken invariant costs a copy rather than a panic.
pub(crate) fn sub_bytes(frame: &Bytes, part: &[u8]) -> Bytes {
    if part.is_empty() {
        return Bytes::new();
    }
    let base = frame.as_ptr() as usize;
    let start = part.as_ptr() as usize;
    match start.checked_sub(base) {
        Some(offset) if offset + part.len() <= frame.len() => {
            frame.slice(offset..offset + part.len())
        }
        _ => Bytes::copy_from_slice(part),
    }
}

/// The owned form of a `Message` table read from `frame`.
pub(crate) fn message(frame: &Bytes, m: &fb::Message<'_>, channel: &Arc<str>) -> Message {
    let payload = m
        .payload()
        .map(|p| sub_bytes(frame, p.bytes()))
        .unwrap_or_default();
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.name().to_owned(), h.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let kind = match m.kind() {
        fb::MessageKind::Update => MessageKind::Update,
        fb::MessageKind::Delete => MessageKind::Delete,
        // Unknown kinds from a newer server read as items.
        _ => MessageKind::Item,
    };
    Message {
        channel: Arc::clone(channel),
        offset: m.offset(),
        id: m.id().map(message_id_to_u128).unwrap_or_default(),
        sender: m.sender().unwrap_or_default().to_owned(),
        timestamp_ms: m.timestamp_ms(),
        payload,
        headers,
        kind,
        target: (kind != MessageKind::Item).then_some(m.target()),
        state: match m.state() {
            fb::ItemState::Updated => ItemState::Updated,
            fb::ItemState::Deleted => ItemState::Deleted,
            _ => ItemState::Original,
        },
    }
}

/// The owned form of a `Presence` frame.
pub(crate) fn presence(p: &fb::Presence<'_>, channel: &Arc<str>) -> PresenceEvent {
    PresenceEvent {
        channel: Arc::clone(channel),
        user: p.user().unwrap_or_default().to_owned(),
        joined: p.joined(),
        connections: p.connections(),
    }
}

pub(crate) fn publish_ack(ack: &fb::PublishAck<'_>) -> PublishAck {
    PublishAck {
        offset: ack.offset(),
        id: ack.id().map(message_id_to_u128).unwrap_or_default(),
        duplicate: ack.duplicate(),
        dropped: ack.dropped(),
    }
}

pub(crate) fn history_page(
    frame: &Bytes,
    page: &fb::HistoryPage<'_>,
    channel: &Arc<str>,
) -> HistoryPage {
    let messages = page
        .messages()
        .map(|ms| ms.iter().map(|m| message(frame, &m, channel)).collect())
        .unwrap_or_default();
    HistoryPage {
        messages,
        has_more: page.has_more(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_proto::{Body, Encoder, MessageRef, decode};

    #[test]
    fn sub_bytes_slices_inside_and_copies_outside() {
        let frame = Bytes::from_static(b"hello world");
        let inner = sub_bytes(&frame, &frame[6..]);
        assert_eq!(&inner[..], b"world");
        assert_eq!(inner.as_ptr(), frame[6..].as_ptr(), "must not copy");
        let foreign = [1u8, 2, 3];
        assert_eq!(&sub_bytes(&frame, &foreign)[..], &foreign);
        assert!(sub_bytes(&frame, &[]).is_empty());
    }

    #[test]
    fn message_payload_is_zero_copy() {
        let mut enc = Encoder::new();
        let frame = enc.message(&MessageRef {
            offset: 7,
            id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            sender: "alice",
            timestamp_ms: 42,
            payload: b"payload bytes",
            headers: [("content-type", "text/plain")],
            meta: quiver_proto::MessageMeta::ITEM,
        });
        let Ok(Body::Message(m)) = decode(&frame) else {
            panic!("not a message");
        };
        let channel: Arc<str> = Arc::from("room");
        let msg = message(&frame, &m, &channel);
        assert_eq!(msg.offset, 7);
        assert_eq!(msg.id, 0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(msg.sender, "alice");
        assert_eq!(msg.timestamp_ms, 42);
        assert_eq!(&msg.payload[..], b"payload bytes");
        assert_eq!(
            msg.headers,
            vec![("content-type".into(), "text/plain".into())]
        );
        let range = frame.as_ptr_range();
        assert!(
            range.contains(&msg.payload.as_ptr()),
            "payload must point into the frame"
        );
    }

    #[test]
    fn edits_and_states_decode() {
        let frame = Encoder::new().message(&MessageRef {
            offset: 9,
            id: 1,
            sender: "bob",
            timestamp_ms: 1,
            payload: b"new",
            headers: quiver_proto::NO_HEADERS,
            meta: quiver_proto::MessageMeta {
                kind: fb::MessageKind::Update,
                target: 4,
                state: fb::ItemState::Original,
            },
        });
        let Ok(Body::Message(m)) = decode(&frame) else {
            panic!("not a message");
        };
        let msg = message(&frame, &m, &Arc::from("feed"));
        assert_eq!(
            (msg.kind, msg.target, msg.state),
            (MessageKind::Update, Some(4), ItemState::Original)
        );
        let item = Encoder::new().message(&MessageRef {
            offset: 4,
            id: 1,
            sender: "bob",
            timestamp_ms: 1,
            payload: b"",
            headers: quiver_proto::NO_HEADERS,
            meta: quiver_proto::MessageMeta {
                kind: fb::MessageKind::Item,
                target: 0,
                state: fb::ItemState::Deleted,
            },
        });
        let Ok(Body::Message(m)) = decode(&item) else {
            panic!("not a message");
        };
        let msg = message(&item, &m, &Arc::from("feed"));
        assert_eq!(
            (msg.kind, msg.target, msg.state),
            (MessageKind::Item, None, ItemState::Deleted)
        );
    }
}
