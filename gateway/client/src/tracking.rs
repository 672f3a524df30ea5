//! Live tracking from the client's side: reporting positions (`track`) and
//! watching a tracking channel (`Watch`).
//!
//! Positions are latest-wins. They go out as QUIC datagrams when the path
//! carries them (on the control stream otherwise) and are never answered;
//! they come in as datagrams too, which the network may drop or reorder.
//! A `Watch` therefore keeps each entity's newest timestamp and never
//! yields an older position after a newer one.

use std::collections::{HashMap, VecDeque};

use quiver_proto::{PositionRef, fb};
use tokio::sync::mpsc;

use crate::error::ClientError;
use crate::subscription::Subscription;
use crate::types::{PresenceEvent, SubscriptionEvent};

/// Presence events a watch keeps for `presence()`; older ones are dropped.
const PRESENCE_KEPT: usize = 1024;

/// Batches of positions a watch's queue holds before newer ones are
/// dropped (the next update of an entity replaces what was lost).
pub(crate) const WATCH_QUEUE: usize = 1024;

/// One location fix of a tracked entity.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Position {
    /// What moves: a courier, a vehicle, a parcel.
    pub entity: String,
    /// WGS 84 degrees.
    pub lat: f64,
    pub lon: f64,
    /// Metres.
    pub accuracy: Option<f64>,
    /// Degrees clockwise from north.
    pub heading: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// When the fix was taken, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Who reported it (set on received positions).
    pub user: Option<String>,
}

impl Position {
    /// A fix of `entity` at (`lat`, `lon`), taken now.
    pub fn new(entity: impl Into<String>, lat: f64, lon: f64) -> Self {
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            entity: entity.into(),
            lat,
            lon,
            accuracy: None,
            heading: None,
            speed: None,
            timestamp_ms,
            user: None,
        }
    }

    /// Sets when the fix was taken (Unix milliseconds).
    pub fn at(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// Sets accuracy (m), heading (degrees) and speed (m/s).
    pub fn motion(
        mut self,
        accuracy: Option<f64>,
        heading: Option<f64>,
        speed: Option<f64>,
    ) -> Self {
        self.accuracy = accuracy;
        self.heading = heading;
        self.speed = speed;
        self
    }

    pub(crate) fn as_ref(&self) -> PositionRef<'_> {
        PositionRef {
            entity: &self.entity,
            lat: self.lat,
            lon: self.lon,
            accuracy: self.accuracy,
            heading: self.heading,
            speed: self.speed,
            timestamp_ms: self.timestamp_ms,
            user: None,
        }
    }

    fn from_table(position: fb::Position<'_>) -> Self {
        let p = PositionRef::from_table(position);
        Self {
            entity: p.entity.to_owned(),
            lat: p.lat,
            lon: p.lon,
            accuracy: p.accuracy,
            heading: p.heading,
            speed: p.speed,
            timestamp_ms: p.timestamp_ms,
            user: p.user.map(str::to_owned),
        }
    }
}

/// One Positions frame, decoded.
#[derive(Debug)]
pub(crate) struct PositionBatch {
    positions: Vec<Position>,
    snapshot: bool,
}

impl PositionBatch {
    pub(crate) fn decode(frame: &fb::Positions<'_>) -> Self {
        Self {
            positions: frame
                .positions()
                .into_iter()
                .flatten()
                .map(Position::from_table)
                .collect(),
            snapshot: frame.snapshot(),
        }
    }
}

/// A position a [`Watch`] received.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WatchEvent {
    pub position: Position,
    /// Part of the latest known positions sent when the watch started (or
    /// restarted after a reconnect), not a live update.
    pub snapshot: bool,
}

/// A live view of a tracking channel: the latest known position of every
/// entity first, then updates, at most `max_rate` per entity per second,
/// never older than one already yielded for the same entity. Survives
/// reconnects like a [`Subscription`]; dropping it stops the watch.
#[derive(Debug)]
pub struct Watch {
    subscription: Subscription,
    rx: mpsc::Receiver<PositionBatch>,
    queue: VecDeque<WatchEvent>,
    newest: HashMap<String, u64>,
    presence: VecDeque<PresenceEvent>,
    /// Set once the subscription reported its end.
    ended: Option<Option<ClientError>>,
}

impl Watch {
    pub(crate) fn new(subscription: Subscription, rx: mpsc::Receiver<PositionBatch>) -> Self {
        Self {
            subscription,
            rx,
            queue: VecDeque::new(),
            newest: HashMap::new(),
            presence: VecDeque::new(),
            ended: None,
        }
    }

    /// Join and leave events of the channel's users (tracking channels
    /// have presence), collected while `next` runs, oldest first.
    pub fn presence(&mut self) -> impl Iterator<Item = PresenceEvent> + '_ {
        self.presence.drain(..)
    }

    /// The next position, `Some(Err(_))` once if the watch failed, then
    /// `None`. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, ClientError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(Ok(event));
            }
            if let Some(end) = &mut self.ended {
                // Positions still queued were yielded above; then the end.
                return match self.rx.try_recv() {
                    Ok(batch) => {
                        self.accept(batch);
                        continue;
                    }
                    Err(_) => end.take().map(Err),
                };
            }
            // Presence first: its frames come before the positions on the
            // stream, so a snapshot's joins are collected before the
            // snapshot's positions are yielded.
            tokio::select! {
                biased;
                event = self.subscription.next_event() => match event {
                    Some(Ok(SubscriptionEvent::Presence(presence))) => {
                        if self.presence.len() == PRESENCE_KEPT {
                            self.presence.pop_front();
                        }
                        self.presence.push_back(presence);
                    }
                    // A tracking subscription carries no messages.
                    Some(Ok(_)) => {}
                    Some(Err(error)) => self.ended = Some(Some(error)),
                    None => self.ended = Some(None),
                },
                batch = self.rx.recv() => match batch {
                    Some(batch) => self.accept(batch),
                    // The connection task let go of the queue: the
                    // subscription ended, and says why.
                    None => {
                        self.ended = Some(self.subscription.next_event().await.and_then(Result::err));
                    }
                },
            }
        }
    }

    /// The watched channel.
    pub fn channel(&self) -> &str {
        self.subscription.channel()
    }

    /// Stops the watch and waits for the server to confirm.
    pub async fn unwatch(self) -> Result<(), ClientError> {
        self.subscription.unsubscribe().await
    }

    fn accept(&mut self, batch: PositionBatch) {
        for position in batch.positions {
            if let Some(newest) = self.newest.get_mut(&position.entity) {
                if position.timestamp_ms <= *newest {
                    continue;
                }
                *newest = position.timestamp_ms;
            } else {
                self.newest
                    .insert(position.entity.clone(), position.timestamp_ms);
            }
            self.queue.push_back(WatchEvent {
                position,
                snapshot: batch.snapshot,
            });
        }
    }
}
