use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use quiver_proto::Encoder;
use quiver_proto::fb::ErrorCode;
use quiver_session::{LaneId, SubscriptionId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::h3::{ALPN_H3, H3App};
use super::lanes::{LANE_QUEUE, read_lane, write_lane};
use crate::connection::{Inbound, LaneBlocked, Shared, Transport, serve};
use crate::delivery::{FrameSink, SinkClosed};
use crate::tracking::{DatagramFailed, DatagramOut};

/// Frames read from all lanes and not yet taken by the session.
const INBOUND_QUEUE: usize = 64;
/// Control-lane responses go ahead of bulk subscription data.
const CONTROL_PRIORITY: i32 = 1;

/// Completes the QUIC handshake of an incoming connection and serves it:
/// the Quiver protocol, or HTTP/3 when the client negotiated ALPN `h3`.
pub(crate) async fn accept(incoming: quinn::Incoming, shared: Arc<Shared>, h3: H3App) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            debug!(%remote, %error, "QUIC handshake failed");
            return;
        }
    };
    if negotiated_alpn(&connection).as_deref() == Some(ALPN_H3) {
        return super::h3::serve(connection, h3).await;
    }
    let session_id = format!("{:016x}", rand::random::<u64>());
    let lanes = Arc::new(Mutex::new(Lanes::default()));
    let (inbound, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let max_frame = shared.limits.max_frame_bytes as usize;
    let overflow = shared
        .delivery
        .metrics
        .positions_dropped
        .with_label_values(&["inbound_full"]);
    let acceptor = tokio::spawn(accept_lanes(
        connection.clone(),
        lanes.clone(),
        Inbox {
            queue: inbound,
            overflow,
        },
        max_frame,
    ));
    let transport = QuicTransport { connection, lanes };
    serve(shared, transport, inbound_rx, session_id).await;
    acceptor.abort();
}

fn negotiated_alpn(connection: &quinn::Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

#[derive(Default)]
struct Lanes {
    queues: HashMap<LaneId, mpsc::Sender<Bytes>>,
    control_writer: Option<JoinHandle<()>>,
}

/// Where a connection's frames and datagrams go, and the counter of the
/// datagrams dropped because the session was behind.
struct Inbox {
    queue: mpsc::Sender<Inbound>,
    overflow: prometheus::IntCounter,
}

/// Turns every bidirectional stream the client opens into a lane (the first
/// is the control lane, numbered 0) and hands on the client's datagrams.
async fn accept_lanes(
    connection: quinn::Connection,
    lanes: Arc<Mutex<Lanes>>,
    inbox: Inbox,
    max_frame: usize,
) {
    let Inbox {
        queue: inbound,
        overflow,
    } = inbox;
    let mut next = 0u64;
    loop {
        let (send, recv) = tokio::select! {
            stream = connection.accept_bi() => match stream {
                Ok(stream) => stream,
                Err(_) => return,
            },
            datagram = connection.read_datagram() => match datagram {
                Ok(datagram) => {
                    // Positions are latest-wins: when the session is behind,
                    // dropping one loses nothing the next will not carry, and
                    // waiting would only delay every stream behind it.
                    if inbound.try_send(Inbound::Datagram(datagram)).is_err() {
                        overflow.inc();
                    }
                    continue;
                }
                Err(_) => return,
            },
        };
        let lane = LaneId(next);
        next += 1;
        let (queue, queued) = mpsc::channel(LANE_QUEUE);
        if lane == LaneId::CONTROL {
            let _ = send.set_priority(CONTROL_PRIORITY);
        }
        let writer = tokio::spawn(write_lane(send, queued));
        {
            let mut lanes = lanes.lock().unwrap_or_else(PoisonError::into_inner);
            lanes.queues.insert(lane, queue);
            if lane == LaneId::CONTROL {
                lanes.control_writer = Some(writer);
            }
        }
        tokio::spawn(read_lane(lane, recv, inbound.clone(), max_frame));
    }
}

struct QuicTransport {
    connection: quinn::Connection,
    lanes: Arc<Mutex<Lanes>>,
}

impl Transport for QuicTransport {
    type Sink = QuicSink;
    type Datagrams = QuicDatagrams;

    fn datagrams(&self) -> QuicDatagrams {
        QuicDatagrams(self.connection.clone())
    }

    fn send(&mut self, lane: LaneId, frame: Bytes) -> Result<(), LaneBlocked> {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = lanes.queues.get(&lane) else {
            // The client never opened this lane (an Error before any
            // stream, such as a handshake timeout): the close code alone
            // carries the error.
            return Ok(());
        };
        match queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(LaneBlocked),
            // A request lane the client already stopped: its answers have
            // nowhere to go, and that is the client's choice.
            Err(mpsc::error::TrySendError::Closed(_)) if lane != LaneId::CONTROL => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(LaneBlocked),
        }
    }

    fn finish_lane(&mut self, lane: LaneId) {
        // Dropping the queue lets the writer drain it and finish the stream.
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queues
            .remove(&lane);
    }

    fn open_subscription(
        &self,
        id: SubscriptionId,
        channel: &str,
    ) -> impl Future<Output = Result<QuicSink, SinkClosed>> + Send + 'static {
        // Encoded here, not in the future, so the borrowed name need not live on.
        let header = Encoder::new().stream_header(id, channel);
        let connection = self.connection.clone();
        async move {
            let mut send = connection.open_uni().await.map_err(|_| SinkClosed)?;
            send.write_chunk(header).await.map_err(|_| SinkClosed)?;
            Ok(QuicSink { send })
        }
    }

    async fn close(self, code: ErrorCode, reason: &str) {
        let control_writer = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            // Closing the queues lets each writer drain and finish its stream.
            lanes.queues.clear();
            lanes.control_writer.take()
        };
        if let Some(writer) = control_writer {
            let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
        }
        let reason = &reason.as_bytes()[..reason.len().min(256)];
        self.connection.close(u32::from(code.0).into(), reason);
    }
}

/// A subscription's server stream.
pub(crate) struct QuicSink {
    send: quinn::SendStream,
}

impl FrameSink for QuicSink {
    async fn send(&mut self, frames: &mut [Bytes]) -> Result<(), SinkClosed> {
        self.send
            .write_all_chunks(frames)
            .await
            .map_err(|_| SinkClosed)
    }
}

/// A connection's datagrams, for tracking watchers.
pub(crate) struct QuicDatagrams(quinn::Connection);

impl DatagramOut for QuicDatagrams {
    fn max_size(&self) -> Option<usize> {
        self.0.max_datagram_size()
    }

    fn send(&self, datagram: Bytes) -> Result<(), DatagramFailed> {
        use quinn::SendDatagramError as E;
        match self.0.send_datagram(datagram) {
            Ok(()) => Ok(()),
            Err(E::UnsupportedByPeer | E::Disabled | E::TooLarge) => Err(DatagramFailed::UseStream),
            Err(E::ConnectionLost(_)) => Err(DatagramFailed::Closed),
        }
    }
}
