//! The client's protocol bookkeeping as a state machine without I/O.
//!
//! Inputs arrive through `submit` (API calls), `on_frame` (control-stream
//! frames), `route` (a subscription stream announced itself) and the
//! connection lifecycle (`on_connected`, `on_goaway`, `on_disconnected`);
//! frames to write come out of `poll_transmit`. The connection task is a
//! thin shell around it, and the tests drive it without a network.

mod dispatch;
mod lifecycle;
mod submit;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::{DEFAULT_MAX_FRAME_BYTES, Encoder};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::command::Reply;
use crate::subscription::SubShared;
use crate::types::{HistoryPage, PublishAck, SubscriptionEvent};

pub(crate) use dispatch::Signal;

/// Largest frame this client builds, far below the FlatBuffers 2 GiB
/// ceiling at which the encoder would panic.
const ENCODER_LIMIT: usize = 1 << 30;

/// What a subscription stream's reader needs to deliver messages.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) tx: mpsc::Sender<SubscriptionEvent>,
    pub(crate) channel: Arc<str>,
    /// Set for a tracking watch.
    pub(crate) positions: Option<mpsc::Sender<crate::tracking::PositionBatch>>,
}

/// Whether requests can be written right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection: requests wait in `pending` until `on_connected`.
    Down,
    Up,
    /// The server sent GoAway: no new requests on this connection, but its
    /// responses and messages are still read until it closes.
    Draining,
}

/// A request awaiting its response; kept until answered so that it can be
/// re-sent on the next connection.
#[derive(Debug)]
enum Pending {
    Publish {
        frame: Bytes,
        reply: Reply<PublishAck>,
        _permit: OwnedSemaphorePermit,
    },
    History {
        frame: Bytes,
        channel: Arc<str>,
        reply: Reply<HistoryPage>,
        _permit: OwnedSemaphorePermit,
    },
    /// A user's subscribe (`reply` set) or an automatic resubscribe.
    Subscribe {
        sub: u64,
        frame: Bytes,
        reply: Option<(Reply<u64>, OwnedSemaphorePermit)>,
    },
    /// A user's unsubscribe (`reply` set) or one for a dropped Subscription.
    Unsubscribe {
        sub: u64,
        reply: Option<(Reply<()>, OwnedSemaphorePermit)>,
    },
}

/// A subscription the user holds.
#[derive(Debug)]
struct SubEntry {
    shared: Arc<SubShared>,
    tx: mpsc::Sender<SubscriptionEvent>,
    /// The `since` of the user's Subscribe, until the first Subscribed.
    since: Option<u64>,
    /// The `last` of the user's Subscribe, until the first Subscribed.
    last: u32,
    /// The server's id for it on the current connection.
    server_id: Option<u32>,
    /// A Subscribed arrived at least once, so `shared.resume` is meaningful.
    confirmed: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    next_request_id: u64,
    link: Link,
    pending: HashMap<u64, Pending>,
    subs: HashMap<u64, SubEntry>,
    /// Server subscription id -> client id, for the current connection.
    by_server_id: HashMap<u32, u64>,
    /// Stream readers waiting for a Subscribed that names their stream.
    parked: HashMap<u32, oneshot::Sender<Route>>,
    outbox: VecDeque<Bytes>,
    /// Requests written on the current connection (answered ones are pruned
    /// lazily by `drained`).
    sent: HashSet<u64>,
    encoder: Encoder,
    /// The server's `max_frame_bytes`; bigger requests are refused locally
    /// because the server would close the whole connection over them.
    max_frame_bytes: usize,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            next_request_id: 1,
            link: Link::Down,
            pending: HashMap::new(),
            subs: HashMap::new(),
            by_server_id: HashMap::new(),
            parked: HashMap::new(),
            outbox: VecDeque::new(),
            sent: HashSet::new(),
            encoder: Encoder::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// Next frame to write to the control stream.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.pop_front()
    }

    /// Requests awaiting a response.
    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Subscriptions the user holds.
    #[cfg(test)]
    pub(crate) fn subscription_len(&self) -> usize {
        self.subs.len()
    }

    fn request_id(&mut self) -> u64 {
        // Request id 0 is reserved; a u64 counter never wraps back to it.
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// Queues `frame` for writing if the link takes new requests; otherwise
    /// it stays in `pending` and is written by `on_connected`.
    fn send(&mut self, id: u64, frame: &Bytes) {
        if self.link == Link::Up {
            self.outbox.push_back(frame.clone());
            self.sent.insert(id);
        }
    }

    /// After GoAway: whether every request written on this connection has
    /// been answered, so it can be left without abandoning any.
    pub(crate) fn drained(&mut self) -> bool {
        let pending = &self.pending;
        self.sent.retain(|id| pending.contains_key(id));
        self.link == Link::Draining && self.sent.is_empty()
    }

    /// The user dropped a Subscription without unsubscribing.
    pub(crate) fn on_subscription_dropped(&mut self, sub: u64) {
        let Some(entry) = self.subs.remove(&sub) else {
            return;
        };
        if let Some(server_id) = entry.server_id {
            self.by_server_id.remove(&server_id);
            if self.link == Link::Up {
                self.unsubscribe(sub, server_id, None);
            }
        }
    }

    /// A subscription stream announced `server_id`: hand its reader the
    /// route now, or once the matching Subscribed arrives.
    pub(crate) fn route(&mut self, server_id: u32, reply: oneshot::Sender<Route>) {
        match self.route_for(server_id) {
            Some(route) => {
                let _ = reply.send(route);
            }
            None => {
                // A second stream for the same id replaces the first, whose
                // reader then gives up: the server must not do that anyway.
                self.parked.insert(server_id, reply);
            }
        }
    }

    fn route_for(&self, server_id: u32) -> Option<Route> {
        let entry = self.subs.get(self.by_server_id.get(&server_id)?)?;
        Some(Route {
            tx: entry.tx.clone(),
            channel: Arc::clone(&entry.shared.channel),
            positions: entry.shared.watch.as_ref().map(|w| w.positions.clone()),
        })
    }

    /// Where the positions of subscription `server_id` go, for datagrams.
    pub(crate) fn positions_route(
        &self,
        server_id: u32,
    ) -> Option<&mpsc::Sender<crate::tracking::PositionBatch>> {
        let entry = self.subs.get(self.by_server_id.get(&server_id)?)?;
        entry.shared.watch.as_ref().map(|w| &w.positions)
    }

    /// The Subscribe frame of a (re)subscription: a watch asks for its
    /// rate; a message subscription for its starting point.
    fn subscribe_frame(
        &mut self,
        id: u64,
        shared: &SubShared,
        since: Option<u64>,
        last: u32,
    ) -> Bytes {
        match &shared.watch {
            Some(watch) => {
                let options = quiver_proto::SubscribeOptions {
                    max_rate: watch.max_rate,
                    ..quiver_proto::SubscribeOptions::default()
                };
                self.encoder.subscribe_with(id, &shared.channel, &options)
            }
            None => {
                let options = quiver_proto::SubscribeOptions {
                    since,
                    last,
                    ..quiver_proto::SubscribeOptions::default()
                };
                self.encoder.subscribe_with(id, &shared.channel, &options)
            }
        }
    }
}
