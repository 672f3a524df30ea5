//! Connection lifecycle: what survives a reconnect and what is redone.

use super::{Link, Pending, State};
use crate::error::ClientError;

impl State {
    /// A connection is up (Welcome received): re-send every request still
    /// awaiting an answer and resubscribe every live subscription.
    ///
    /// Publishes go out again with their original idempotency key, so the
    /// server answers `duplicate` instead of writing twice; resubscribes ask
    /// for everything after the last offset the user received.
    pub(crate) fn on_connected(&mut self, max_frame_bytes: u32) {
        self.link = Link::Up;
        if max_frame_bytes > 0 {
            // Capped because the encoder cannot build frames beyond 2 GiB,
            // whatever limit the server advertises.
            self.max_frame_bytes = (max_frame_bytes as usize).min(super::ENCODER_LIMIT);
        }
        let mut resubscribe: Vec<(u64, u64)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.confirmed)
            .map(|(id, s)| (*id, s.shared.resume()))
            .collect();
        // Deterministic order keeps logs and tests readable.
        resubscribe.sort_unstable();
        for (sub, since) in resubscribe {
            let id = self.request_id();
            let Some(shared) = self
                .subs
                .get(&sub)
                .map(|e| std::sync::Arc::clone(&e.shared))
            else {
                continue;
            };
            let frame = self.subscribe_frame(id, &shared, Some(since), 0);
            self.outbox.push_back(frame.clone());
            self.sent.insert(id);
            self.pending.insert(
                id,
                Pending::Subscribe {
                    sub,
                    frame,
                    reply: None,
                },
            );
        }
        // Oldest first, so concurrent publishes keep their relative order.
        let mut ids: Vec<u64> = self.pending.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let frame = match self.pending.get(&id) {
                Some(Pending::Publish { frame, .. } | Pending::History { frame, .. }) => frame,
                Some(Pending::Subscribe {
                    frame,
                    reply: Some(_),
                    ..
                }) => frame,
                _ => continue,
            };
            self.outbox.push_back(frame.clone());
            self.sent.insert(id);
        }
    }

    /// The server sent GoAway: hold new requests for the next connection.
    pub(crate) fn on_goaway(&mut self) {
        if self.link == Link::Up {
            self.link = Link::Draining;
        }
    }

    /// The connection is gone. Forgets everything tied to it and drops
    /// requests whose callers stopped waiting.
    pub(crate) fn on_disconnected(&mut self) {
        self.link = Link::Down;
        self.outbox.clear();
        self.sent.clear();
        self.by_server_id.clear();
        self.parked.clear();
        for entry in self.subs.values_mut() {
            entry.server_id = None;
        }
        let subs = &mut self.subs;
        self.pending.retain(|_, pending| match pending {
            Pending::Publish { reply, .. } => !reply.is_closed(),
            Pending::History { reply, .. } => !reply.is_closed(),
            // Resubscribes are rebuilt from `subs` by `on_connected`.
            Pending::Subscribe { reply: None, .. } => false,
            Pending::Subscribe {
                sub,
                reply: Some((reply, _)),
                ..
            } => {
                if reply.is_closed() {
                    subs.remove(sub);
                }
                !reply.is_closed()
            }
            // The server forgot the subscription with the connection.
            Pending::Unsubscribe { sub, reply } => {
                subs.remove(sub);
                if let Some((reply, _)) = reply.take() {
                    let _ = reply.send(Ok(()));
                }
                false
            }
        });
    }

    /// Nothing can continue (reconnect disabled or gave up, token
    /// rejected): every waiter and every subscription gets `error`.
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        self.on_disconnected();
        for (_, pending) in self.pending.drain() {
            fail(pending, error);
        }
        for (_, entry) in self.subs.drain() {
            entry.shared.end_with(error.clone());
        }
    }

    /// The user closed the client: requests fail with `Closed`, and
    /// subscriptions end cleanly (their queues still drain).
    pub(crate) fn close_all(&mut self) {
        self.on_disconnected();
        for (_, pending) in self.pending.drain() {
            fail(pending, &ClientError::Closed);
        }
        self.subs.clear();
    }
}

/// Answers one pending request with `error`.
pub(super) fn fail(pending: Pending, error: &ClientError) {
    match pending {
        Pending::Publish { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        Pending::History { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        Pending::Subscribe {
            reply: Some((reply, _)),
            ..
        } => {
            let _ = reply.send(Err(error.clone()));
        }
        Pending::Unsubscribe {
            reply: Some((reply, _)),
            ..
        } => {
            let _ = reply.send(Err(error.clone()));
        }
        Pending::Subscribe { reply: None, .. } | Pending::Unsubscribe { reply: None, .. } => {}
    }
}
