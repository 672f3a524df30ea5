//! Dispatching control-stream frames to the requests they answer.

use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Body, decode, fb};

use super::lifecycle::fail;
use super::{Pending, State};
use crate::decode;
use crate::error::{ClientError, ErrorCode};

/// Something the connection shell must act on.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// The server is shutting down: reconnect after `after`.
    GoAway { after: Duration, message: String },
    /// The server reported a connection-level error and is closing.
    Fatal(ClientError),
}

impl State {
    /// Handles one frame from the control stream (prefix included).
    ///
    /// # Errors
    ///
    /// A frame that is invalid or not allowed here: the server broke the
    /// protocol, and the shell should close the connection with the code of
    /// the error and reconnect.
    pub(crate) fn on_frame(&mut self, frame: &Bytes) -> Result<Option<Signal>, ClientError> {
        let body = decode(frame)?;
        match body {
            Body::Subscribed(s) => self.on_subscribed(&s)?,
            Body::Unsubscribed(u) => match self.pending.remove(&u.request_id()) {
                Some(Pending::Unsubscribe { sub, reply }) => {
                    self.forget(sub, u.subscription_id());
                    if let Some((reply, _)) = reply {
                        let _ = reply.send(Ok(()));
                    }
                }
                other => return self.mismatch(u.request_id(), other, body.name()),
            },
            Body::PublishAck(ack) => match self.pending.remove(&ack.request_id()) {
                Some(Pending::Publish { reply, .. }) => {
                    let _ = reply.send(Ok(decode::publish_ack(&ack)));
                }
                other => return self.mismatch(ack.request_id(), other, body.name()),
            },
            Body::HistoryPage(page) => match self.pending.remove(&page.request_id()) {
                Some(Pending::History { reply, channel, .. }) => {
                    // Skip decoding for a caller that stopped waiting.
                    if !reply.is_closed() {
                        let _ = reply.send(Ok(decode::history_page(frame, &page, &channel)));
                    }
                }
                other => return self.mismatch(page.request_id(), other, body.name()),
            },
            Body::Error(e) => return Ok(self.on_error(&e)),
            Body::GoAway(g) => {
                self.on_goaway();
                return Ok(Some(Signal::GoAway {
                    after: Duration::from_millis(g.reconnect_after_ms().into()),
                    message: g.message().unwrap_or_default().to_owned(),
                }));
            }
            Body::Hello(_)
            | Body::Welcome(_)
            | Body::Subscribe(_)
            | Body::Unsubscribe(_)
            | Body::Publish(_)
            | Body::HistoryRequest(_)
            | Body::Message(_)
            | Body::StreamHeader(_)
            | Body::Edit(_)
            | Body::Track(_)
            | Body::Positions(_)
            | Body::Presence(_) => {
                return Err(ClientError::UnexpectedFrame(format!(
                    "{} on the control stream after Welcome",
                    body.name()
                )));
            }
        }
        Ok(None)
    }

    fn on_subscribed(&mut self, s: &fb::Subscribed<'_>) -> Result<(), ClientError> {
        let (sub, reply) = match self.pending.remove(&s.request_id()) {
            Some(Pending::Subscribe { sub, reply, .. }) => (sub, reply),
            other => return self.mismatch(s.request_id(), other, "Subscribed").map(drop),
        };
        let server_id = s.subscription_id();
        let head = s.head_offset();
        // The caller of subscribe() gave up (timeout): nobody will ever hold
        // this Subscription, so undo it.
        let abandoned = reply.as_ref().is_some_and(|(r, _)| r.is_closed());
        let Some(entry) = self.subs.get_mut(&sub).filter(|_| !abandoned) else {
            self.subs.remove(&sub);
            self.unsubscribe(sub, server_id, None);
            return Ok(());
        };
        entry.server_id = Some(server_id);
        if !entry.confirmed {
            entry.confirmed = true;
            // Live from the head, replay after `since`, or the latest
            // `last`: nothing at or below this point is to be delivered.
            let floor = entry
                .since
                .unwrap_or_else(|| head.saturating_sub(u64::from(entry.last)));
            entry.shared.set_resume(floor);
        }
        self.by_server_id.insert(server_id, sub);
        if let Some(parked) = self.parked.remove(&server_id)
            && let Some(route) = self.route_for(server_id)
        {
            let _ = parked.send(route);
        }
        if let Some((reply, _permit)) = reply {
            let _ = reply.send(Ok(head));
        }
        Ok(())
    }

    fn on_error(&mut self, e: &fb::Error<'_>) -> Option<Signal> {
        let error = ClientError::from_frame(e);
        let request_id = e.request_id();
        // Not the request's fault: the connection is closing (fatal), or the
        // server is draining and refuses new work (GoingAway). Either way
        // the next connection gets the request again.
        let for_next_connection = e.fatal() || e.code() == ErrorCode::GoingAway;
        match self.pending.remove(&request_id) {
            // The server dropped the subscription, or drops it with the
            // connection: that is what the caller wanted.
            Some(Pending::Unsubscribe { sub, reply })
                if e.code() == ErrorCode::NotSubscribed || for_next_connection =>
            {
                self.subs.remove(&sub);
                if let Some((reply, _)) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            Some(Pending::Unsubscribe { sub, reply }) => {
                self.subs.remove(&sub);
                if let Some((reply, _)) = reply {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Some(pending) if for_next_connection => {
                self.pending.insert(request_id, pending);
                self.sent.remove(&request_id);
            }
            // A resubscribe was refused: this subscription cannot continue
            // without a gap, so it ends with the reason.
            Some(Pending::Subscribe {
                sub, reply: None, ..
            }) => {
                if let Some(entry) = self.subs.remove(&sub) {
                    tracing::warn!(channel = %entry.shared.channel, %error, "resubscribe refused");
                    entry.shared.end_with(error.clone());
                }
            }
            Some(pending) => {
                if let Pending::Subscribe { sub, .. } = &pending {
                    self.subs.remove(sub);
                }
                fail(pending, &error);
            }
            None if e.fatal() => {}
            None => tracing::warn!(%error, request_id, "server error"),
        }
        e.fatal().then_some(Signal::Fatal(error))
    }

    /// Forgets a subscription the server confirmed is gone.
    fn forget(&mut self, sub: u64, server_id: u32) {
        self.subs.remove(&sub);
        if self.by_server_id.get(&server_id) == Some(&sub) {
            self.by_server_id.remove(&server_id);
        }
    }

    /// A response whose request id is unknown or of another kind.
    fn mismatch(
        &mut self,
        request_id: u64,
        pending: Option<Pending>,
        frame: &str,
    ) -> Result<Option<Signal>, ClientError> {
        match pending {
            // Unknown ids are answers to requests we stopped tracking; a
            // stale answer is harmless.
            None => {
                tracing::debug!(request_id, frame, "response to an unknown request");
                Ok(None)
            }
            Some(pending) => {
                // Keep it for re-sending on the next connection.
                self.pending.insert(request_id, pending);
                Err(ClientError::UnexpectedFrame(format!(
                    "{frame} answers request {request_id}, which was of another kind"
                )))
            }
        }
    }
}
