//! Lanes: the client's bidirectional streams, read into frames and written
//! from bounded queues.

use bytes::Bytes;
use quiver_proto::FrameReader;
use quiver_session::LaneId;
use tokio::sync::mpsc;

use crate::connection::Inbound;

/// Frames queued for one lane before the client counts as not reading.
pub(super) const LANE_QUEUE: usize = 1024;
/// Most bytes taken from a stream per read.
const READ_CHUNK: usize = 64 * 1024;
/// Frames written per write call.
const WRITE_BATCH: usize = 64;

/// Reads frames from a lane until it ends. Waiting on `inbound` when the
/// session is busy stops the read, which is QUIC backpressure to the client.
pub(super) async fn read_lane(
    lane: LaneId,
    mut recv: quinn::RecvStream,
    inbound: mpsc::Sender<Inbound>,
    max_frame_bytes: usize,
) {
    let mut reader = FrameReader::new(max_frame_bytes);
    loop {
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => {
                reader.push_bytes(chunk.bytes);
                loop {
                    match reader.next_frame() {
                        Ok(Some(frame)) => {
                            if inbound.send(Inbound::Frame { lane, frame }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let _ = inbound.send(Inbound::Invalid(error)).await;
                            return;
                        }
                    }
                }
            }
            Ok(None) => {
                let end = match reader.finish() {
                    Err(error) => Inbound::Invalid(error),
                    Ok(()) if lane == LaneId::CONTROL => Inbound::ControlFinished,
                    Ok(()) => Inbound::LaneFinished(lane),
                };
                let _ = inbound.send(end).await;
                return;
            }
            // Reset by the client or connection lost: nothing more to read.
            Err(_) => return,
        }
    }
}

/// Writes a lane's queued frames, several per write call, then finishes
/// the stream once the queue is closed and drained.
pub(super) async fn write_lane(mut send: quinn::SendStream, mut queue: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        if send.write_all_chunks(&mut batch).await.is_err() {
            return;
        }
        batch.clear();
    }
    let _ = send.finish();
    // Wait (bounded) until the client has the data, so a close right after
    // does not discard a final Error or GoAway frame.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send.stopped()).await;
}
