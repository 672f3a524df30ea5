//! Who is subscribed to which channel on this node: presence.
//!
//! Channels whose namespace has `presence = true` (and every tracking
//! channel) register each subscriber here. The registry counts, per
//! channel and user, the subscriptions (one per connection: a connection
//! subscribes to a channel at most once) and broadcasts an event when a
//! user's first one arrives (`joined`) and when their last one goes
//! (`left`). A user with two phones joins once and leaves when the second
//! phone goes.
//!
//! # API (for every kind of subscription)
//!
//! ```ignore
//! let Joined { guard, snapshot, events } = presence.join(&key, user);
//! // 1. send `snapshot`: one joined event per user present, this one included;
//! // 2. then forward `events` (a bounded broadcast) until the subscription ends;
//! //    `RecvError::Lagged` means events were lost: end the subscription as a
//! //    slow consumer (the client resubscribes and gets a fresh snapshot);
//! // 3. drop `guard` when the subscription ends (unsubscribe, connection
//! //    close, delivery end, task abort): that unregisters, and the last
//! //    guard of a user broadcasts `left`.
//! ```
//!
//! The snapshot and the receiver are taken under the same lock as the join
//! itself, so the events that follow the snapshot are exactly the changes
//! after it: the subscriber never sees its own join twice, nor misses one.
//! [`Presence::members`] lists a channel's users for the HTTP API.
//!
//! Presence is per node: with several gateway nodes, each knows the users
//! connected to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use quiver_storage::ChannelKey;
use tokio::sync::broadcast;

/// Events a channel's ring holds for subscribers that have not yet
/// forwarded them. Presence changes are rare, and a subscriber drains its
/// ring whenever its stream accepts frames.
pub const EVENT_RING: usize = 1024;

/// A user joined (first subscription) or left (last one gone) a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceEvent {
    pub user: Arc<str>,
    pub joined: bool,
    /// The user's subscribed connections after the event: at least 1 for
    /// `joined`, 0 for a leave.
    pub connections: u32,
}

/// The registry of one node, shared by all its connections.
#[derive(Debug)]
pub struct Presence {
    rooms: Mutex<HashMap<ChannelKey, Room>>,
    ring: usize,
}

#[derive(Debug)]
struct Room {
    users: HashMap<Arc<str>, u32>,
    events: broadcast::Sender<PresenceEvent>,
}

/// What [`Presence::join`] gives a new subscriber.
#[derive(Debug)]
pub struct Joined {
    /// Unregisters when dropped.
    pub guard: PresenceGuard,
    /// Every user present right after the join (the joining one included),
    /// as joined events with their connection counts, sorted by user.
    pub snapshot: Vec<PresenceEvent>,
    /// Every join and leave after the snapshot.
    pub events: broadcast::Receiver<PresenceEvent>,
}

/// One registered subscription; dropping it unregisters.
#[derive(Debug)]
pub struct PresenceGuard {
    registry: Arc<Presence>,
    key: ChannelKey,
    user: Arc<str>,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.registry.leave(&self.key, &self.user);
    }
}

impl Default for Presence {
    fn default() -> Self {
        Self::new(EVENT_RING)
    }
}

impl Presence {
    /// A registry whose channels each buffer up to `ring` events.
    pub fn new(ring: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            ring: ring.max(1),
        }
    }

    /// Registers one subscription of `user` to `key`.
    pub fn join(self: &Arc<Self>, key: &ChannelKey, user: Arc<str>) -> Joined {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let room = rooms.entry(key.clone()).or_insert_with(|| Room {
            users: HashMap::new(),
            events: broadcast::channel(self.ring).0,
        });
        let count = room.users.entry(user.clone()).or_default();
        *count += 1;
        if *count == 1 {
            // Nobody listening is fine: the first subscriber of a channel.
            let _ = room.events.send(PresenceEvent {
                user: user.clone(),
                joined: true,
                connections: 1,
            });
        }
        // After our own event: the snapshot carries it instead.
        let events = room.events.subscribe();
        let snapshot = snapshot(&room.users);
        drop(rooms);
        Joined {
            guard: PresenceGuard {
                registry: self.clone(),
                key: key.clone(),
                user,
            },
            snapshot,
            events,
        }
    }

    /// The users subscribed to `key` on this node, with their connection
    /// counts, sorted by user.
    pub fn members(&self, key: &ChannelKey) -> Vec<(Arc<str>, u32)> {
        let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms.get(key).map_or_else(Vec::new, |room| {
            snapshot(&room.users)
                .into_iter()
                .map(|e| (e.user, e.connections))
                .collect()
        })
    }

    fn leave(&self, key: &ChannelKey, user: &Arc<str>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(room) = rooms.get_mut(key) else {
            return;
        };
        let Some(count) = room.users.get_mut(user) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        room.users.remove(user);
        if room.users.is_empty() {
            // Every subscriber is gone, so nobody listens any more.
            rooms.remove(key);
            return;
        }
        let _ = room.events.send(PresenceEvent {
            user: user.clone(),
            joined: false,
            connections: 0,
        });
    }
}

fn snapshot(users: &HashMap<Arc<str>, u32>) -> Vec<PresenceEvent> {
    let mut list: Vec<PresenceEvent> = users
        .iter()
        .map(|(user, &connections)| PresenceEvent {
            user: user.clone(),
            joined: true,
            connections,
        })
        .collect();
    list.sort_unstable_by(|a, b| a.user.cmp(&b.user));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChannelKey {
        ChannelKey::new("t", "room:1")
    }

    #[test]
    fn first_join_and_last_leave_are_events() {
        let presence = Arc::new(Presence::default());
        let alice = presence.join(&key(), "alice".into());
        assert_eq!(alice.snapshot.len(), 1);
        assert_eq!(&*alice.snapshot[0].user, "alice");
        let mut events = alice.events;

        let bob1 = presence.join(&key(), "bob".into());
        let names: Vec<&str> = bob1.snapshot.iter().map(|e| &*e.user).collect();
        assert_eq!(names, ["alice", "bob"]);
        let joined = events.try_recv().expect("bob joined");
        assert_eq!(
            (&*joined.user, joined.joined, joined.connections),
            ("bob", true, 1)
        );

        let bob2 = presence.join(&key(), "bob".into());
        assert!(
            events.try_recv().is_err(),
            "a second connection is no event"
        );
        assert_eq!(
            presence.members(&key()),
            vec![(Arc::from("alice"), 1), (Arc::from("bob"), 2)]
        );

        drop(bob1);
        assert!(events.try_recv().is_err(), "bob still has a connection");
        drop(bob2);
        let left = events.try_recv().expect("bob left");
        assert_eq!(
            (&*left.user, left.joined, left.connections),
            ("bob", false, 0)
        );

        drop(alice.guard);
        assert!(presence.members(&key()).is_empty());
        assert!(presence.rooms.lock().expect("lock").is_empty());
    }

    #[test]
    fn channels_are_separate() {
        let presence = Arc::new(Presence::default());
        let _a = presence.join(&key(), "alice".into());
        let other = ChannelKey::new("t2", "room:1");
        let b = presence.join(&other, "bob".into());
        assert_eq!(b.snapshot.len(), 1);
        assert_eq!(presence.members(&key()).len(), 1);
    }
}
