//! One watcher of a tracking channel: the latest known positions first,
//! then every accepted update, coalesced per entity and capped at the
//! watcher's rate.
//!
//! Updates of an entity arriving faster than the watcher's rate wait in a
//! one-slot-per-entity pending map, where a newer fix replaces an older
//! one; each entity's slot is sent once its interval has passed. A watcher
//! therefore receives at most `max_rate` positions per entity per second,
//! always the newest, and never a backlog. Slower updates go out at once.
//! Live positions travel as QUIC datagrams, several per datagram; the
//! snapshot, and everything when the connection has no datagrams, goes on
//! the subscription's stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Encoder, MAX_DATAGRAM_BYTES, PositionRef};
use quiver_storage::{ChannelKey, Position, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{DatagramFailed, DatagramOut, Tracker};
use crate::delivery::{
    DeliveryEnd, FrameSink, PresenceFeed, PresenceMember, SinkClosed, next_presence, presence_frame,
};
use crate::presence::Presence;

/// Positions per frame on the stream (snapshot and fallback).
const STREAM_BATCH: usize = 256;
/// Updates taken from the ring per wake-up before sending.
const DRAIN_BATCH: usize = 1024;
/// Bytes of a Positions frame besides its positions, rounded up.
const FRAME_OVERHEAD: usize = 48;

/// What a watcher needs to start.
#[derive(Debug)]
pub struct WatchRequest {
    pub channel: ChannelKey,
    pub subscription_id: u32,
    /// Positions per entity per second; at least 1.
    pub max_rate: u32,
    /// Set when the channel has presence: the registry and the watcher.
    pub presence: Option<(Arc<Presence>, PresenceMember)>,
}

/// Runs one watcher until its stream or connection closes. `started`
/// learns when the snapshot has been taken (the head offset of a tracking
/// channel is always 0).
pub async fn watch(
    tracker: Arc<Tracker>,
    request: WatchRequest,
    mut sink: impl FrameSink,
    datagrams: impl DatagramOut,
    started: oneshot::Sender<Result<u64, StoreError>>,
) -> DeliveryEnd {
    let channel = tracker.channel(&request.channel);
    // Attach before the snapshot: an update accepted in between is in
    // both, and the timestamp check drops the second copy.
    let mut updates = channel.subscribe();
    let snapshot = tracker.latest(&request.channel).await;
    let mut encoder = Encoder::new();
    let (mut presence, frames) = match request.presence {
        Some((registry, member)) => {
            let (feed, frames) =
                PresenceFeed::join(&registry, &request.channel, member, &mut encoder);
            (Some(feed), frames)
        }
        None => (None, Vec::new()),
    };
    let _ = started.send(Ok(0));
    let mut watcher = Watcher {
        subscription_id: request.subscription_id,
        interval: Duration::from_secs(1) / request.max_rate.max(1),
        entities: HashMap::with_capacity(snapshot.len()),
        waiting: Vec::new(),
        next_due: None,
        round: 1,
        ready: Vec::new(),
        encoder,
        frames,
        tracker: tracker.clone(),
    };
    let run = async {
        watcher.send_snapshot(&snapshot, &mut sink).await?;
        drop(snapshot);
        loop {
            let due = watcher.next_due();
            tokio::select! {
                received = updates.recv() => match received {
                    Ok(position) => watcher.offer(position, Instant::now()),
                    Err(RecvError::Lagged(_)) => watcher.resync(&channel.snapshot()),
                    Err(RecvError::Closed) => return Err(DeliveryEnd::SinkClosed),
                },
                () = sleep_until(due), if due.is_some() => {}
                event = next_presence(&mut presence) => match event {
                    Ok(event) => {
                        let id = watcher.subscription_id;
                        let frame = presence_frame(&mut watcher.encoder, id, &event);
                        watcher.frames.push(frame);
                        watcher.flush_stream(&mut sink).await?;
                    }
                    // Lost join or leave events would leave the watcher with
                    // a wrong list of users: it resubscribes for a fresh one.
                    Err(RecvError::Lagged(_)) => return Err(DeliveryEnd::SlowConsumer),
                    Err(RecvError::Closed) => presence = None,
                },
            }
            let now = Instant::now();
            for _ in 0..DRAIN_BATCH {
                match updates.try_recv() {
                    Ok(position) => watcher.offer(position, now),
                    Err(TryRecvError::Lagged(_)) => watcher.resync(&channel.snapshot()),
                    Err(_) => break,
                }
            }
            watcher.release_due(now);
            watcher.send_ready(&mut sink, &datagrams).await?;
        }
    };
    let ended: Result<std::convert::Infallible, DeliveryEnd> = run.await;
    let Err(end) = ended;
    end
}

struct Watcher {
    subscription_id: u32,
    /// Least time between two positions of one entity.
    interval: Duration,
    entities: HashMap<Arc<str>, EntityState>,
    /// Entities with a pending position, so timers never scan them all.
    waiting: Vec<Arc<str>>,
    /// When the earliest pending position may go out.
    next_due: Option<Instant>,
    /// Counts sends, so `queued_round` needs no resetting after one.
    round: u64,
    /// Positions to send now, at most one per entity.
    ready: Vec<Arc<Position>>,
    encoder: Encoder,
    frames: Vec<Bytes>,
    tracker: Arc<Tracker>,
}

#[derive(Default)]
struct EntityState {
    /// Device time of the newest position sent; older ones are never sent.
    sent_ms: u64,
    /// When the last one was sent.
    sent_at: Option<Instant>,
    /// The newest position waiting for the entity's interval to pass.
    pending: Option<Arc<Position>>,
    /// The send round whose `ready` holds a position of this entity; an
    /// entity gets at most one position per round.
    queued_round: u64,
}

impl Watcher {
    fn offer(&mut self, position: Arc<Position>, now: Instant) {
        let (interval, round) = (self.interval, self.round);
        // Cloning the entity's name only for a new entity keeps a shared
        // refcount off the path of every delivery.
        let state = match self.entities.get_mut(&position.entity) {
            Some(state) => state,
            None => self.entities.entry(position.entity.clone()).or_default(),
        };
        let newest_known = state
            .pending
            .as_ref()
            .map_or(state.sent_ms, |p| p.timestamp_ms.max(state.sent_ms));
        if position.timestamp_ms <= newest_known {
            return;
        }
        let free = state.sent_at.is_none_or(|at| now >= at + interval);
        if free && state.queued_round != round {
            state.pending = None;
            state.queued_round = round;
            state.sent_ms = position.timestamp_ms;
            state.sent_at = Some(now);
            self.ready.push(position);
        } else {
            // Replaces an older pending fix: the coalescing.
            let entity = state.pending.is_none().then(|| position.entity.clone());
            state.pending = Some(position);
            if let Some(entity) = entity {
                let due = state.sent_at.map_or(now, |at| at + interval);
                self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
                self.waiting.push(entity);
            }
        }
    }

    /// After a lag the ring lost updates; the channel's latest positions
    /// hold everything that still matters.
    fn resync(&mut self, latest: &[Arc<Position>]) {
        let now = Instant::now();
        for position in latest {
            self.offer(position.clone(), now);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Moves pending positions whose interval has passed to `ready`.
    fn release_due(&mut self, now: Instant) {
        if self.next_due.is_none_or(|due| now < due) {
            return;
        }
        let mut next_due: Option<Instant> = None;
        let (interval, round) = (self.interval, self.round);
        let (entities, ready) = (&mut self.entities, &mut self.ready);
        self.waiting.retain(|entity| {
            let Some(state) = entities.get_mut(entity) else {
                return false;
            };
            let due = state.sent_at.map_or(now, |at| at + interval);
            if state.queued_round == round || now < due {
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
                return true;
            }
            if let Some(position) = state.pending.take() {
                state.sent_ms = position.timestamp_ms;
                state.sent_at = Some(now);
                state.queued_round = round;
                ready.push(position);
            }
            false
        });
        self.next_due = next_due;
    }

    async fn send_snapshot(
        &mut self,
        snapshot: &[Arc<Position>],
        sink: &mut impl FrameSink,
    ) -> Result<(), DeliveryEnd> {
        for position in snapshot {
            let state = self.entities.entry(position.entity.clone()).or_default();
            state.sent_ms = position.timestamp_ms;
        }
        // An empty snapshot is still sent: it tells the client the
        // subscription is live and that nothing is known yet.
        let mut chunks = snapshot.chunks(STREAM_BATCH).peekable();
        if chunks.peek().is_none() {
            let frame = self.encoder.positions(self.subscription_id, [], true);
            self.frames.push(frame);
        }
        for chunk in chunks {
            let positions = chunk.iter().map(|p| position_ref(p));
            let frame = self
                .encoder
                .positions(self.subscription_id, positions, true);
            self.frames.push(frame);
        }
        self.flush_stream(sink).await?;
        self.count(snapshot.len(), "stream");
        Ok(())
    }

    /// Sends `ready`: packed into datagrams when the connection has them,
    /// else (or for what does not fit one) on the stream.
    async fn send_ready(
        &mut self,
        sink: &mut impl FrameSink,
        datagrams: &impl DatagramOut,
    ) -> Result<(), DeliveryEnd> {
        if self.ready.is_empty() {
            return Ok(());
        }
        let ready = std::mem::take(&mut self.ready);
        // What comes after this send is a new round: each entity may again
        // have a position in `ready`.
        self.round += 1;
        let budget = datagrams
            .max_size()
            .map(|size| size.min(MAX_DATAGRAM_BYTES));
        let mut rest: &[Arc<Position>] = &ready;
        if let Some(budget) = budget {
            while !rest.is_empty() {
                let mut size = FRAME_OVERHEAD;
                let fit = rest
                    .iter()
                    .take_while(|p| {
                        size += position_ref(p).encoded_len_bound();
                        size <= budget
                    })
                    .count();
                if fit == 0 {
                    // One position too large for a datagram (a huge entity
                    // id on a small path): the stream takes it.
                    break;
                }
                let positions = rest[..fit].iter().map(|p| position_ref(p));
                let frame = self
                    .encoder
                    .positions(self.subscription_id, positions, false);
                match datagrams.send(frame) {
                    Ok(()) => {
                        self.count(fit, "datagram");
                        rest = &rest[fit..];
                    }
                    Err(DatagramFailed::UseStream) => break,
                    Err(DatagramFailed::Closed) => return Err(DeliveryEnd::SinkClosed),
                }
            }
        }
        for chunk in rest.chunks(STREAM_BATCH) {
            let positions = chunk.iter().map(|p| position_ref(p));
            let frame = self
                .encoder
                .positions(self.subscription_id, positions, false);
            self.frames.push(frame);
        }
        let on_stream = rest.len();
        self.flush_stream(sink).await?;
        self.count(on_stream, "stream");
        // Reuse the allocation for the next round.
        self.ready = ready;
        self.ready.clear();
        Ok(())
    }

    async fn flush_stream(&mut self, sink: &mut impl FrameSink) -> Result<(), DeliveryEnd> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let sent = sink.send(&mut self.frames).await;
        self.frames.clear();
        sent.map_err(|SinkClosed| DeliveryEnd::SinkClosed)
    }

    fn count(&self, positions: usize, via: &str) {
        if positions > 0 {
            self.tracker
                .metrics
                .positions_delivered
                .with_label_values(&[via])
                .inc_by(positions as u64);
        }
    }
}

fn position_ref(position: &Position) -> PositionRef<'_> {
    PositionRef {
        entity: &position.entity,
        lat: position.lat,
        lon: position.lon,
        accuracy: position.accuracy,
        heading: position.heading,
        speed: position.speed,
        timestamp_ms: position.timestamp_ms,
        user: Some(&position.user),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A watcher (and the directory of its tracker's store, to keep).
    fn watcher(max_rate: u32) -> (Watcher, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            quiver_storage::embedded::EmbeddedStore::open(
                quiver_storage::embedded::EmbeddedConfig::new(dir.path()),
            )
            .expect("store"),
        );
        let watcher = Watcher {
            subscription_id: 1,
            interval: Duration::from_secs(1) / max_rate,
            entities: HashMap::new(),
            waiting: Vec::new(),
            next_due: None,
            round: 1,
            ready: Vec::new(),
            encoder: Encoder::new(),
            frames: Vec::new(),
            tracker: Arc::new(Tracker::new(store, Metrics::new().expect("metrics"))),
        };
        (watcher, dir)
    }

    fn fix(entity: &str, timestamp_ms: u64) -> Arc<Position> {
        Arc::new(Position {
            entity: entity.into(),
            lat: 1.0,
            lon: 2.0,
            accuracy: None,
            heading: None,
            speed: None,
            timestamp_ms,
            user: "u".into(),
        })
    }

    /// What `send_ready` would send now, as (entity, timestamp).
    fn take_ready(w: &mut Watcher) -> Vec<(String, u64)> {
        let ready: Vec<_> = w
            .ready
            .drain(..)
            .map(|p| (p.entity.to_string(), p.timestamp_ms))
            .collect();
        // As `send_ready` does after sending.
        w.round += 1;
        ready
    }

    #[tokio::test]
    async fn updates_faster_than_the_rate_are_coalesced_to_the_newest() {
        let (mut w, _dir) = watcher(5);
        let t0 = Instant::now();
        w.offer(fix("a", 1), t0);
        assert_eq!(take_ready(&mut w), [("a".into(), 1)]);
        // Four more within the 200 ms interval: held, newest wins.
        for (i, ts) in [2, 3, 4, 5].into_iter().enumerate() {
            w.offer(
                fix("a", ts),
                t0 + Duration::from_millis(40 * (i as u64 + 1)),
            );
        }
        w.release_due(t0 + Duration::from_millis(199));
        assert!(take_ready(&mut w).is_empty());
        assert_eq!(w.next_due(), Some(t0 + Duration::from_millis(200)));
        w.release_due(t0 + Duration::from_millis(200));
        assert_eq!(take_ready(&mut w), [("a".into(), 5)]);
        assert_eq!(w.next_due(), None);
    }

    #[tokio::test]
    async fn entities_are_independent_and_slow_ones_go_out_at_once() {
        let (mut w, _dir) = watcher(1);
        let t0 = Instant::now();
        w.offer(fix("a", 10), t0);
        w.offer(fix("b", 10), t0);
        assert_eq!(take_ready(&mut w).len(), 2);
        w.offer(fix("a", 11), t0 + Duration::from_millis(10));
        // b's next update comes after its interval: sent at once.
        w.offer(fix("b", 12), t0 + Duration::from_secs(1));
        assert_eq!(take_ready(&mut w), [("b".into(), 12)]);
        w.release_due(t0 + Duration::from_secs(1));
        assert_eq!(take_ready(&mut w), [("a".into(), 11)]);
    }

    #[tokio::test]
    async fn an_older_position_never_follows_a_newer_one() {
        let (mut w, _dir) = watcher(10);
        let t0 = Instant::now();
        w.offer(fix("a", 100), t0);
        take_ready(&mut w);
        let later = t0 + Duration::from_secs(5);
        // A resync after a lag offers the channel's latest again, and a
        // stale copy of an older fix arrives: neither is sent.
        w.resync(&[fix("a", 100)]);
        w.offer(fix("a", 99), later);
        w.release_due(later);
        assert!(take_ready(&mut w).is_empty());
        w.offer(fix("a", 101), later);
        assert_eq!(take_ready(&mut w), [("a".into(), 101)]);
    }
}
