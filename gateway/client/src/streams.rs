//! The per-stream tasks of a connection: the control-stream writer and one
//! reader per subscription stream.

use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Body, FrameReader, decode};
use tokio::sync::{mpsc, oneshot};

use crate::decode::{message, presence};
use crate::error::ClientError;
use crate::io::{ReadFailure, next_frame};
use crate::state::Route;
use crate::types::SubscriptionEvent;

/// Frames written per quinn call when requests queue up, so a burst of
/// publishes takes the connection lock once rather than once per frame.
const WRITE_BATCH: usize = 64;

/// Writes queued frames to the control stream until the queue closes.
pub(crate) async fn write_control(
    mut send: quinn::SendStream,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
) -> Result<(), quinn::WriteError> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while frames.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        send.write_all_chunks(&mut batch).await?;
        batch.clear();
    }
    // The connection is being torn down; a failed finish changes nothing.
    let _ = send.finish();
    Ok(())
}

/// A subscription stream asking the connection task where its messages go.
#[derive(Debug)]
pub(crate) struct RouteRequest {
    pub(crate) server_id: u32,
    pub(crate) reply: oneshot::Sender<Route>,
}

/// How a subscription stream reader ended.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    /// The server finished the stream (after Unsubscribe).
    Finished,
    /// The Subscription was dropped; the stream was stopped.
    ConsumerGone,
    /// No subscription claimed the stream in time; it was stopped.
    Unrouted,
    /// The server reset the stream or the connection ended.
    Aborted(ClientError),
    /// The server broke the protocol on this stream.
    Violation(ClientError),
}

/// Reads one subscription stream: its StreamHeader, then Messages (and
/// Presence events), each pushed into the subscription's bounded queue.
///
/// Waiting on a full queue stops reading, so QUIC flow control pushes back
/// on the server instead of the client buffering without bound.
pub(crate) async fn read_subscription(
    mut recv: quinn::RecvStream,
    routes: mpsc::UnboundedSender<RouteRequest>,
    max_frame_bytes: usize,
    route_timeout: Duration,
) -> StreamEnd {
    let mut reader = FrameReader::new(max_frame_bytes);
    let header = match next_frame(&mut recv, &mut reader).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return StreamEnd::Finished,
        Err(e) => return failure(e),
    };
    let server_id = match decode(&header) {
        Ok(Body::StreamHeader(h)) => h.subscription_id(),
        Ok(other) => return unexpected(other.name(), "StreamHeader"),
        Err(e) => return StreamEnd::Violation(e.into()),
    };
    let (reply, route) = oneshot::channel();
    if routes.send(RouteRequest { server_id, reply }).is_err() {
        return StreamEnd::Unrouted;
    }
    // The Subscribed response may still be on its way: wait for it, but not
    // for ever, so a stream nobody claims cannot pin a stream slot.
    let route = match tokio::time::timeout(route_timeout, route).await {
        Ok(Ok(route)) => route,
        _ => {
            let _ = recv.stop(0u32.into());
            return StreamEnd::Unrouted;
        }
    };
    loop {
        let frame = match next_frame(&mut recv, &mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return StreamEnd::Finished,
            Err(e) => return failure(e),
        };
        let event = match decode(&frame) {
            Ok(Body::Message(m)) => SubscriptionEvent::Message(message(&frame, &m, &route.channel)),
            Ok(Body::Presence(p)) => SubscriptionEvent::Presence(presence(&p, &route.channel)),
            Ok(Body::Positions(p)) if route.positions.is_some() => {
                let batch = crate::tracking::PositionBatch::decode(&p);
                if let Some(positions) = &route.positions
                    && positions.send(batch).await.is_err()
                {
                    let _ = recv.stop(0u32.into());
                    return StreamEnd::ConsumerGone;
                }
                continue;
            }
            Ok(other) => return unexpected(other.name(), "Message"),
            Err(e) => return StreamEnd::Violation(e.into()),
        };
        if route.tx.send(event).await.is_err() {
            let _ = recv.stop(0u32.into());
            return StreamEnd::ConsumerGone;
        }
    }
}

fn failure(e: ReadFailure) -> StreamEnd {
    match e {
        ReadFailure::Decode(e) => StreamEnd::Violation(e.into()),
        e => StreamEnd::Aborted(e.into_error()),
    }
}

fn unexpected(got: &str, want: &str) -> StreamEnd {
    StreamEnd::Violation(ClientError::UnexpectedFrame(format!(
        "{got} on a subscription stream where {want} belongs"
    )))
}
