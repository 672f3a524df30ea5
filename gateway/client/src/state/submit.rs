//! Accepting API calls: encoding each request and tracking it as pending.

use bytes::Bytes;
use quiver_proto::fb;
use tokio::sync::OwnedSemaphorePermit;

use super::{Link, Pending, State, SubEntry};
use crate::command::{Command, Reply};
use crate::error::ClientError;
use crate::types::Direction;

impl State {
    /// Refuses a request whose frame would exceed the server's limit.
    /// `input` is the sum of the variable-size fields, checked before
    /// encoding because the encoder cannot build frames beyond 2 GiB.
    fn check_size(&self, input: usize, frame: Option<&Bytes>) -> Result<(), ClientError> {
        let size = frame.map_or(input, |f| f.len().saturating_sub(4));
        if size > self.max_frame_bytes {
            return Err(ClientError::RequestTooLarge {
                size,
                max: self.max_frame_bytes,
            });
        }
        Ok(())
    }

    /// Accepts an API call. `Close` is the shell's business and ignored here.
    pub(crate) fn submit(&mut self, command: Command) {
        match command {
            Command::Publish {
                channel,
                options,
                reply,
                permit,
            } => {
                let key = options.key.as_deref();
                let input = channel.len()
                    + options.payload.len()
                    + key.map_or(0, str::len)
                    + options
                        .headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>();
                if let Err(e) = self.check_size(input, None) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let id = self.request_id();
                let frame =
                    self.encoder
                        .publish(id, &channel, &options.payload, &options.headers, key);
                if let Err(e) = self.check_size(0, Some(&frame)) {
                    let _ = reply.send(Err(e));
                    return;
                }
                self.send(id, &frame);
                let pending = Pending::Publish {
                    frame,
                    reply,
                    _permit: permit,
                };
                self.pending.insert(id, pending);
            }
            Command::History {
                channel,
                query,
                reply,
                permit,
            } => {
                if let Err(e) = self.check_size(channel.len(), None) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let id = self.request_id();
                let direction = match query.direction {
                    Direction::Backward => fb::Direction::Backward,
                    Direction::Forward => fb::Direction::Forward,
                };
                let frame = self.encoder.history_request(
                    id,
                    &channel,
                    query.limit,
                    query.before,
                    query.after,
                    direction,
                );
                self.send(id, &frame);
                let pending = Pending::History {
                    frame,
                    channel,
                    reply,
                    _permit: permit,
                };
                self.pending.insert(id, pending);
            }
            Command::Subscribe {
                shared,
                since,
                tx,
                reply,
                permit,
            } => {
                if let Err(e) = self.check_size(shared.channel.len(), None) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let id = self.request_id();
                let frame = self.encoder.subscribe(id, &shared.channel, since);
                self.send(id, &frame);
                let sub = shared.id;
                let entry = SubEntry {
                    shared,
                    tx,
                    since,
                    server_id: None,
                    confirmed: false,
                };
                self.subs.insert(sub, entry);
                let reply = Some((reply, permit));
                self.pending
                    .insert(id, Pending::Subscribe { sub, frame, reply });
            }
            Command::Unsubscribe { id, reply, permit } => {
                let server_id = self.subs.get(&id).and_then(|s| s.server_id);
                match server_id {
                    Some(server_id) if self.link == Link::Up => {
                        self.unsubscribe(id, server_id, Some((reply, permit)));
                    }
                    // Nothing to undo on a server that no longer (or not
                    // yet) holds it; a late Subscribed is undone on arrival.
                    _ => {
                        self.subs.remove(&id);
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Command::Close { .. } => {}
        }
    }

    pub(super) fn unsubscribe(
        &mut self,
        sub: u64,
        server_id: u32,
        reply: Option<(Reply<()>, OwnedSemaphorePermit)>,
    ) {
        let id = self.request_id();
        let frame = self.encoder.unsubscribe(id, server_id);
        self.send(id, &frame);
        self.pending.insert(id, Pending::Unsubscribe { sub, reply });
    }
}
