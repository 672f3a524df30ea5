//! Serving one established connection until it ends.

use quiver_proto::FrameReader;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Duration, Instant};

use crate::command::Command;
use crate::connection::{End, Task};
use crate::error::{ClientError, ErrorCode};
use crate::events::ClientEvent;
use crate::handshake::{Established, close_code};
use crate::io::{ReadFailure, connection_error, feed};
use crate::state::Signal;
use crate::streams::{StreamEnd, read_subscription, write_control};

/// How long to wait for the connection close after the server finished
/// the control stream.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The connection is draining after GoAway.
#[derive(Debug, Clone, Copy)]
struct Drain {
    /// When the server asked us to come back.
    reconnect_at: Instant,
    /// When to stop waiting for outstanding answers.
    give_up_at: Instant,
}

fn resume_at(goaway: &Option<Drain>) -> Option<Instant> {
    goaway.as_ref().map(|d| d.reconnect_at)
}

fn going_away() -> ClientError {
    ClientError::Server {
        code: ErrorCode::GoingAway,
        message: "the server asked to reconnect (GoAway)".into(),
        retryable: true,
        fatal: true,
        retry_after: None,
    }
}

/// Aborts the control-stream writer when the connection is left.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Task {
    /// Serves `established` until it is lost or the client closes.
    ///
    /// Every branch of the loop is cancel-safe, so one `select!` multiplexes
    /// the control stream, incoming subscription streams, API calls and the
    /// GoAway deadline without a task per concern.
    pub(crate) async fn live(&mut self, established: Established) -> End {
        let Established {
            connection,
            send,
            mut recv,
            mut reader,
            ..
        } = established;
        let (frames, frames_rx) = mpsc::unbounded_channel();
        let mut writer = AbortOnDrop(tokio::spawn(write_control(send, frames_rx)));
        // Dropping the set (on any return) aborts the stream readers, which
        // releases their clones of the subscription queues.
        let mut streams = JoinSet::new();
        let (routes, mut route_requests) = mpsc::unbounded_channel();
        let mut goaway: Option<Drain> = None;

        if let Err(end) = self.drain(&mut reader, &connection, &mut goaway) {
            return end;
        }
        loop {
            while let Some(frame) = self.state.poll_transmit() {
                // Only fails once the writer died, which its branch reports.
                let _ = frames.send(frame);
            }
            if let Some(drain) = &goaway
                && self.state.drained()
            {
                // Every answer is in: leave now rather than at the server's
                // close, and come back once it asked us to.
                connection.close(0u32.into(), b"reconnecting after GoAway");
                return lost(going_away(), Some(drain.reconnect_at));
            }
            let give_up = goaway.as_ref().map_or_else(far_future, |d| d.give_up_at);
            tokio::select! {
                chunk = recv.read_chunk(usize::MAX, true) => match feed(&mut reader, chunk) {
                    Ok(true) => {
                        if let Err(end) = self.drain(&mut reader, &connection, &mut goaway) {
                            return end;
                        }
                    }
                    Ok(false) => return self.control_finished(&connection, resume_at(&goaway)).await,
                    Err(ReadFailure::Decode(e)) => {
                        return self.violation(&connection, e.into(), resume_at(&goaway));
                    }
                    Err(e) => return lost(e.into_error(), resume_at(&goaway)),
                },
                incoming = connection.accept_uni() => match incoming {
                    Ok(stream) => {
                        streams.spawn(read_subscription(
                            stream,
                            routes.clone(),
                            self.params.max_frame_bytes,
                            self.route_timeout,
                        ));
                    }
                    Err(e) => return lost(connection_error(e), resume_at(&goaway)),
                },
                datagram = connection.read_datagram() => match datagram {
                    Ok(datagram) => self.on_datagram(&datagram),
                    Err(e) => return lost(connection_error(e), resume_at(&goaway)),
                },
                Some(request) = route_requests.recv() => {
                    self.state.route(request.server_id, request.reply);
                }
                Some(ended) = streams.join_next() => match ended {
                    Ok(StreamEnd::Violation(e)) => {
                        return self.violation(&connection, e, resume_at(&goaway));
                    }
                    Ok(StreamEnd::Aborted(e)) => tracing::debug!(error = %e, "subscription stream aborted"),
                    Ok(end) => tracing::debug!(?end, "subscription stream ended"),
                    Err(e) => tracing::error!(error = %e, "subscription stream task failed"),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Close { done }) => {
                        connection.close(0u32.into(), b"client closed");
                        return End::Close(Some(done));
                    }
                    Some(Command::Track { frame }) => {
                        let fits = connection.max_datagram_size().is_some_and(|max| frame.len() <= max);
                        let sent = fits && connection.send_datagram(frame.clone()).is_ok();
                        if !sent {
                            // No datagrams on this path: the stream carries it.
                            let _ = frames.send(frame);
                        }
                    }
                    Some(cmd) => self.state.submit(cmd),
                    None => {
                        connection.close(0u32.into(), b"client dropped");
                        return End::Close(None);
                    }
                },
                Some(sub) = self.drops.recv() => self.state.on_subscription_dropped(sub),
                () = tokio::time::sleep_until(give_up), if goaway.is_some() => {
                    // The server neither answered nor closed in time; what is
                    // unanswered is re-sent on the next connection.
                    connection.close(0u32.into(), b"reconnecting after GoAway");
                    return lost(going_away(), None);
                }
                written = &mut writer.0 => {
                    let cause = match written {
                        Ok(Err(e)) => crate::io::write_error(e),
                        _ => ClientError::io("the control stream writer stopped"),
                    };
                    connection.close(0u32.into(), b"control stream write failed");
                    return lost(cause, resume_at(&goaway));
                }
            }
        }
    }

    /// A datagram from the server: positions of a watch. Anything else is
    /// ignored, as is a batch its watch has no room for (newer positions
    /// follow).
    fn on_datagram(&mut self, datagram: &bytes::Bytes) {
        let Ok(quiver_proto::Body::Positions(positions)) = quiver_proto::decode(datagram) else {
            tracing::debug!("ignoring a datagram that is not a Positions frame");
            return;
        };
        if let Some(route) = self.state.positions_route(positions.subscription_id()) {
            let _ = route.try_send(crate::tracking::PositionBatch::decode(&positions));
        }
    }

    /// Handles every whole frame buffered in `reader`.
    fn drain(
        &mut self,
        reader: &mut FrameReader,
        connection: &quinn::Connection,
        goaway: &mut Option<Drain>,
    ) -> Result<(), End> {
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.violation(connection, e.into(), resume_at(goaway))),
            };
            match self.state.on_frame(&frame) {
                Ok(None) => {}
                Ok(Some(Signal::GoAway { after, message })) => {
                    tracing::info!(%message, ?after, "quiver server going away");
                    self.emit(ClientEvent::GoAway {
                        message,
                        reconnect_after: after,
                    });
                    let reconnect_at = Instant::now() + after;
                    goaway.get_or_insert(Drain {
                        reconnect_at,
                        give_up_at: reconnect_at + self.route_timeout,
                    });
                }
                Ok(Some(Signal::Fatal(cause))) => {
                    // The server closes right after a fatal error; closing
                    // first means not waiting on it to do so.
                    connection.close(0u32.into(), b"fatal error received");
                    let not_before = cause.retry_after().map(|d| Instant::now() + d);
                    return Err(lost(cause, resume_at(goaway).or(not_before)));
                }
                Err(e) => return Err(self.violation(connection, e, resume_at(goaway))),
            }
        }
    }

    /// The server finished the control stream, which it does only while
    /// closing the connection: wait briefly for the close and its code,
    /// which says whether to reconnect.
    async fn control_finished(
        &self,
        connection: &quinn::Connection,
        resume_at: Option<Instant>,
    ) -> End {
        match tokio::time::timeout(CLOSE_GRACE, connection.closed()).await {
            Ok(closed) => lost(connection_error(closed), resume_at),
            Err(_) => {
                let cause =
                    ClientError::UnexpectedFrame("the server finished the control stream".into());
                self.violation(connection, cause, resume_at)
            }
        }
    }

    /// The server broke the protocol: tell it why, then reconnect.
    fn violation(
        &self,
        connection: &quinn::Connection,
        cause: ClientError,
        goaway: Option<Instant>,
    ) -> End {
        tracing::warn!(%cause, "closing connection after a protocol violation");
        let reason = cause.to_string();
        let reason = reason.as_bytes();
        connection.close(close_code(&cause), &reason[..reason.len().min(256)]);
        lost(cause, goaway)
    }
}

fn lost(cause: ClientError, not_before: Option<Instant>) -> End {
    End::Lost {
        cause,
        not_before: not_before.unwrap_or_else(Instant::now),
    }
}

fn far_future() -> Instant {
    // Far enough to never fire, near enough not to overflow Instant.
    Instant::now() + Duration::from_secs(86_400 * 365)
}
