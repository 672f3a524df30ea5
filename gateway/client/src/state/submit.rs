//! Accepting API calls: encoding each request and tracking it as pending.

use bytes::Bytes;
use quiver_proto::fb;
use tokio::sync::OwnedSemaphorePermit;

use super::{Link, Pending, State, SubEntry};
use crate::command::{Command, Reply};
use crate::error::ClientError;
use crate::types::{Direction, PublishAck, PublishOptions};

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
            } => self.submit_publish(&channel, None, &options, reply, permit),
            Command::Edit {
                channel,
                target,
                delete,
                options,
                reply,
                permit,
            } => self.submit_publish(&channel, Some((target, delete)), &options, reply, permit),
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
                last,
                tx,
                reply,
                permit,
            } => {
                if let Err(e) = self.check_size(shared.channel.len(), None) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let id = self.request_id();
                let frame = self.subscribe_frame(id, &shared, since, last);
                self.send(id, &frame);
                let sub = shared.id;
                let entry = SubEntry {
                    shared,
                    tx,
                    since,
                    last,
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
            // A position while disconnected is dropped: the next one, sent
            // once connected, supersedes it anyway.
            Command::Close { .. } | Command::Track { .. } => {}
        }
    }

    /// A publish, or an edit (`Some((target, delete))`): answered by a
    /// PublishAck, re-sent with its key after a reconnect.
    fn submit_publish(
        &mut self,
        channel: &str,
        edit: Option<(u64, bool)>,
        options: &PublishOptions,
        reply: Reply<PublishAck>,
        permit: OwnedSemaphorePermit,
    ) {
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
        let frame = match edit {
            None => self
                .encoder
                .publish(id, channel, &options.payload, &options.headers, key),
            Some((target, delete)) => self.encoder.edit(
                id,
                channel,
                target,
                delete,
                &options.payload,
                &options.headers,
                key,
            ),
        };
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
