//! One mock connection's request handling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quiver_proto::{Body, Encoder, MessageRef, decode, fb};
use tokio::sync::mpsc;

use super::{Hub, Stored, lock};

pub(super) struct Session {
    pub(super) connection: quinn::Connection,
    pub(super) hub: Arc<Mutex<Hub>>,
    pub(super) user: String,
    pub(super) subs: HashMap<u32, mpsc::UnboundedSender<Bytes>>,
    pub(super) next_sub: u32,
}

impl Session {
    /// The response to one request; `None` to drop the connection.
    pub(super) async fn handle(&mut self, enc: &mut Encoder, frame: &Bytes) -> Option<Bytes> {
        match decode(frame).ok()? {
            Body::Publish(p) => {
                let channel = p.channel()?.to_owned();
                let key = p.key().unwrap_or_default().to_owned();
                let mut hub = lock(&self.hub);
                if let Some(offset) = hub.keys.get(&(channel.clone(), key.clone())) {
                    return Some(enc.publish_ack(
                        p.request_id(),
                        *offset,
                        u128::from(*offset),
                        true,
                    ));
                }
                let stored = Stored {
                    offset: hub.channels.get(&channel).map_or(0, Vec::len) as u64 + 1,
                    sender: self.user.clone(),
                    payload: Bytes::copy_from_slice(
                        p.payload().map(|v| v.bytes()).unwrap_or_default(),
                    ),
                    headers: p
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| (h.name().to_owned(), h.value().to_owned()))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                let message = encode_message(enc, &stored);
                hub.subscribers
                    .retain(|(c, tx)| c != &channel || tx.send(message.clone()).is_ok());
                hub.keys.insert((channel.clone(), key), stored.offset);
                let offset = stored.offset;
                hub.channels.entry(channel).or_default().push(stored);
                if std::mem::take(&mut hub.lose_next_ack) {
                    self.connection
                        .close(0u32.into(), b"crashed before the ack");
                    return None;
                }
                Some(enc.publish_ack(p.request_id(), offset, u128::from(offset), false))
            }
            Body::Subscribe(s) => {
                let channel = s.channel()?.to_owned();
                let id = self.next_sub;
                self.next_sub += 1;
                let mut stream = self.connection.open_uni().await.ok()?;
                stream
                    .write_all(&enc.stream_header(id, &channel))
                    .await
                    .ok()?;
                let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
                tokio::spawn(async move {
                    while let Some(frame) = rx.recv().await {
                        if stream.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    let _ = stream.finish();
                });
                // Replay and registration under one lock, so no publish
                // slips between them.
                let mut hub = lock(&self.hub);
                let stored = hub.channels.get(&channel).cloned().unwrap_or_default();
                let head = stored.last().map_or(0, |m| m.offset);
                if let Some(since) = s.since() {
                    for m in stored.iter().filter(|m| m.offset > since) {
                        let _ = tx.send(encode_message(enc, m));
                    }
                }
                hub.subscribers.push((channel.clone(), tx.clone()));
                self.subs.insert(id, tx);
                Some(enc.subscribed(s.request_id(), id, &channel, head))
            }
            Body::Unsubscribe(u) => {
                let Some(tx) = self.subs.remove(&u.subscription_id()) else {
                    return Some(enc.error(
                        u.request_id(),
                        fb::ErrorCode::NotSubscribed,
                        "unknown",
                        false,
                        false,
                        0,
                    ));
                };
                let mut hub = lock(&self.hub);
                hub.subscribers
                    .retain(|(_, other)| !other.same_channel(&tx));
                hub.unsubscribes += 1;
                Some(enc.unsubscribed(u.request_id(), u.subscription_id()))
            }
            Body::HistoryRequest(h) => {
                let hub = lock(&self.hub);
                let stored = hub.channels.get(h.channel()?).cloned().unwrap_or_default();
                let before = h.before().unwrap_or(u64::MAX);
                let after = h.after().unwrap_or(0);
                let mut page: Vec<&Stored> = stored
                    .iter()
                    .filter(|m| m.offset < before && m.offset > after)
                    .collect();
                if h.direction() == fb::Direction::Backward {
                    page.reverse();
                }
                let limit = h.limit() as usize;
                let has_more = page.len() > limit;
                page.truncate(limit);
                let refs = page.iter().map(|m| message_ref(m));
                Some(enc.history_page(h.request_id(), refs, has_more))
            }
            _ => None,
        }
    }
}

fn message_ref(m: &Stored) -> MessageRef<'_, &Vec<(String, String)>> {
    MessageRef {
        offset: m.offset,
        id: u128::from(m.offset),
        sender: &m.sender,
        timestamp_ms: 1_700_000_000_000 + m.offset,
        payload: &m.payload,
        headers: &m.headers,
        meta: quiver_proto::MessageMeta::ITEM,
    }
}

fn encode_message(enc: &mut Encoder, m: &Stored) -> Bytes {
    enc.message(&message_ref(m))
}
