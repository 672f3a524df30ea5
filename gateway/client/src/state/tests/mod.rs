//! The bookkeeping driven in memory: frames in, frames and replies out.

mod lifecycle;
mod requests;

use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::{Body, Encoder, decode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{Signal, State};
use crate::command::Command;
use crate::error::ClientError;
use crate::subscription::SubShared;
use crate::types::{PublishAck, PublishOptions, SubscriptionEvent};

pub(super) fn permit() -> OwnedSemaphorePermit {
    Arc::new(Semaphore::new(1))
        .try_acquire_owned()
        .expect("permit")
}

pub(super) fn connected() -> State {
    let mut state = State::new();
    state.on_connected(1 << 20);
    state
}

pub(super) fn sent(state: &mut State) -> Vec<Bytes> {
    std::iter::from_fn(|| state.poll_transmit()).collect()
}

pub(super) type Answer<T> = oneshot::Receiver<Result<T, ClientError>>;

pub(super) fn publish(state: &mut State, key: &str) -> Answer<PublishAck> {
    let (reply, answer) = oneshot::channel();
    state.submit(Command::Publish {
        channel: "room".into(),
        options: PublishOptions::new("hi").key(key),
        reply,
        permit: permit(),
    });
    answer
}

pub(super) struct Sub {
    pub(super) shared: Arc<SubShared>,
    pub(super) rx: mpsc::Receiver<SubscriptionEvent>,
    pub(super) answer: Answer<u64>,
}

pub(super) fn subscribe(state: &mut State, id: u64, since: Option<u64>) -> Sub {
    let shared = Arc::new(SubShared::new(id, Arc::from("room")));
    let (tx, rx) = mpsc::channel(4);
    let (reply, answer) = oneshot::channel();
    state.submit(Command::Subscribe {
        shared: Arc::clone(&shared),
        since,
        last: 0,
        tx,
        reply,
        permit: permit(),
    });
    Sub { shared, rx, answer }
}

/// The request id and `since` of a Subscribe frame.
pub(super) fn subscribe_fields(frame: &Bytes) -> (u64, Option<u64>) {
    match decode(frame) {
        Ok(Body::Subscribe(s)) => (s.request_id(), s.since()),
        other => panic!("expected Subscribe, got {other:?}"),
    }
}

pub(super) fn publish_fields(frame: &Bytes) -> (u64, String) {
    match decode(frame) {
        Ok(Body::Publish(p)) => (p.request_id(), p.key().unwrap_or_default().to_owned()),
        other => panic!("expected Publish, got {other:?}"),
    }
}

pub(super) fn ack(request_id: u64, offset: u64) -> Bytes {
    Encoder::new().publish_ack(request_id, offset, u128::from(offset), false)
}
