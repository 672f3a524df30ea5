//! In-memory fan-out of committed messages to the subscribers of this node.
//!
//! Each channel with at least one local subscriber has one bounded
//! broadcast ring. A message's frame is encoded once and the same `Bytes`
//! is handed to every subscriber, so fan-out costs a reference-count bump
//! per subscriber, not a copy. A subscriber that falls a whole ring behind
//! learns it from the ring ("lagged") instead of making the ring grow.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use quiver_storage::{ChannelKey, Offset};
use tokio::sync::broadcast;

/// A committed message ready to deliver: its offset (to keep order and skip
/// duplicates) and its complete, encoded Message frame.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub offset: Offset,
    pub frame: Bytes,
}

type Shard = Mutex<HashMap<ChannelKey, broadcast::Sender<Delivery>>>;

/// The channels with local subscribers, sharded to keep lock hold times
/// short when many channels are busy at once.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// Messages a channel's ring holds; a subscriber further behind is a
    /// slow consumer.
    ring_capacity: usize,
}

impl Hub {
    pub fn new(ring_capacity: usize) -> Self {
        let shards = (0..64).map(|_| Mutex::new(HashMap::new())).collect();
        Self {
            shards,
            hasher: RandomState::new(),
            ring_capacity: ring_capacity.max(1),
        }
    }

    fn shard(&self, key: &ChannelKey) -> &Shard {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        &self.shards[index]
    }

    /// Hands a committed message to the channel's local subscribers and
    /// returns how many there were.
    pub fn publish(&self, key: &ChannelKey, delivery: Delivery) -> usize {
        let sender = {
            let shard = self
                .shard(key)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match shard.get(key) {
                Some(sender) => sender.clone(),
                None => return 0,
            }
        };
        // Sent outside the shard lock: waking many subscribers takes a while
        // and must not stall other channels of the shard.
        sender.send(delivery).unwrap_or(0)
    }

    /// Starts receiving the channel's future messages.
    pub fn subscribe(self: &Arc<Self>, key: ChannelKey) -> HubSubscription {
        let receiver = {
            let mut shard = self
                .shard(&key)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shard
                .entry(key.clone())
                .or_insert_with(|| broadcast::channel(self.ring_capacity).0)
                .subscribe()
        };
        HubSubscription {
            hub: Arc::clone(self),
            key,
            receiver,
        }
    }

    /// Messages each channel's ring holds.
    pub fn ring_capacity(&self) -> usize {
        self.ring_capacity
    }

    /// Channels with at least one local subscriber.
    pub fn channel_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// One subscriber's receiving end. Dropping the last one of a channel
/// removes the channel's ring.
#[derive(Debug)]
pub struct HubSubscription {
    hub: Arc<Hub>,
    key: ChannelKey,
    receiver: broadcast::Receiver<Delivery>,
}

impl HubSubscription {
    pub fn receiver(&mut self) -> &mut broadcast::Receiver<Delivery> {
        &mut self.receiver
    }
}

impl Drop for HubSubscription {
    fn drop(&mut self) {
        let mut shard = self
            .hub
            .shard(&self.key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the shard lock no `subscribe` can race us, so a count of
        // one means this receiver is the ring's last.
        if shard
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            shard.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(offset: u64) -> Delivery {
        Delivery {
            offset,
            frame: Bytes::from_static(b"frame"),
        }
    }

    #[tokio::test]
    async fn fans_out_and_cleans_up() {
        let hub = Arc::new(Hub::new(8));
        let key = ChannelKey::new("t", "c");
        assert_eq!(hub.publish(&key, delivery(1)), 0);
        let mut a = hub.subscribe(key.clone());
        let mut b = hub.subscribe(key.clone());
        assert_eq!(hub.publish(&key, delivery(2)), 2);
        assert_eq!(a.receiver().recv().await.map(|d| d.offset).ok(), Some(2));
        assert_eq!(b.receiver().recv().await.map(|d| d.offset).ok(), Some(2));
        drop(a);
        assert_eq!(hub.channel_count(), 1);
        drop(b);
        assert_eq!(hub.channel_count(), 0);
    }

    #[tokio::test]
    async fn tenants_do_not_share_channels() {
        let hub = Arc::new(Hub::new(8));
        let mut a = hub.subscribe(ChannelKey::new("a", "room"));
        assert_eq!(hub.publish(&ChannelKey::new("b", "room"), delivery(1)), 0);
        assert!(a.receiver().try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_ring_reports_lag() {
        let hub = Arc::new(Hub::new(2));
        let key = ChannelKey::new("t", "c");
        let mut sub = hub.subscribe(key.clone());
        for offset in 1..=5 {
            hub.publish(&key, delivery(offset));
        }
        assert!(matches!(
            sub.receiver().recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
    }
}
