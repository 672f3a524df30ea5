//! Per-channel group commit on the owning node.
//!
//! Each channel has a queue of pending append calls and a writer lock that
//! also holds the channel's sequencing state (lease, head). A caller queues
//! its messages, then takes the lock; whoever holds it drains the whole
//! queue and writes it as one group, answering every caller in it. While a
//! group is being written, new calls queue up, so under load many calls
//! share one round trip, as the embedded store shares one fsync.
//!
//! Only one group per channel is in flight at a time. That is what keeps
//! offsets gap-free: a group is written in offset order and the head moves
//! only after every write of the group succeeded, so a failure can leave a
//! written-but-unacked tail, never a hole in the middle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::Inner;
use super::db::unavailable;
use super::lease::Lease;
use crate::{Appended, ChannelKey, NewMessage, Offset, StoreError};

type Reply = oneshot::Sender<Result<Vec<Appended>, StoreError>>;

/// One queued `append` call's messages for this channel.
pub(crate) struct Pending {
    /// Tells this call apart in the queue, so a caller that gives up can
    /// take its call back out.
    ticket: u64,
    pub(crate) messages: Vec<NewMessage>,
    reply: Reply,
}

/// The sequencing state of one channel, guarded by its writer lock.
#[derive(Debug, Default)]
pub(crate) struct SeqState {
    pub(crate) lease: Option<Lease>,
    /// The last offset written, once loaded; `None` means "read the durable
    /// head before assigning" (at start, after a lease change or a failure).
    pub(crate) head: Option<Offset>,
    /// After a write whose outcome is unknown (a timeout), no new offsets
    /// are assigned until then, so that write has settled (applied or not)
    /// before the head is read again.
    pub(crate) cooldown_until: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct ChannelSeq {
    queue: Mutex<VecDeque<Pending>>,
    next_ticket: std::sync::atomic::AtomicU64,
    state: Arc<tokio::sync::Mutex<SeqState>>,
}

/// Every channel this node has appended to.
pub(crate) type Channels = Mutex<HashMap<ChannelKey, Arc<ChannelSeq>>>;

impl ChannelSeq {
    /// Takes queued calls up to `max` messages (always at least one call).
    fn take_group(&self, max: usize) -> Vec<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut group = Vec::new();
        let mut count = 0;
        while let Some(next) = queue.front() {
            if !group.is_empty() && count + next.messages.len() > max {
                break;
            }
            count += next.messages.len();
            group.extend(queue.pop_front());
        }
        group
    }
}

impl Inner {
    fn channel(&self, key: &ChannelKey) -> Arc<ChannelSeq> {
        let mut map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key.clone()).or_default())
    }

    /// Every channel whose lease this node holds, for release on close.
    pub(crate) fn held_leases(&self) -> Vec<(ChannelKey, Arc<ChannelSeq>)> {
        let map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }
}

impl ChannelSeq {
    pub(crate) async fn lock_state(&self) -> OwnedMutexGuard<SeqState> {
        Arc::clone(&self.state).lock_owned().await
    }
}

/// Appends `messages` (all of `key`) and returns their outcomes in order.
pub(crate) async fn submit(
    inner: &Arc<Inner>,
    key: &ChannelKey,
    messages: Vec<NewMessage>,
) -> Result<Vec<Appended>, StoreError> {
    let channel = inner.channel(key);
    let (reply, mut outcome) = oneshot::channel();
    let ticket = channel
        .next_ticket
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    channel
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(Pending {
            ticket,
            messages,
            reply,
        });
    // If this call times out or its future is dropped before a group took
    // it, it leaves the queue: an append the caller gave up on must not be
    // written later, behind the caller's back.
    let _unqueue = Unqueue {
        channel: &channel,
        ticket,
    };
    // Waiting covers the group ahead of ours and our own.
    let wait = inner.config.request_timeout * 3;
    loop {
        if let Some(result) = try_outcome(&mut outcome) {
            return result;
        }
        let Ok(state) = tokio::time::timeout(wait, channel.lock_state()).await else {
            return Err(unavailable(
                "the channel's writes are backed up; retry later",
            ));
        };
        if let Some(result) = try_outcome(&mut outcome) {
            return result;
        }
        let group = channel.take_group(inner.config.max_batch);
        // A task of its own, so a caller that gives up mid-write (a dropped
        // future) cannot leave the channel's state half-updated.
        let task = tokio::spawn(commit(Arc::clone(inner), key.clone(), state, group));
        if task.await.is_err() {
            return Err(StoreError::Backend("a group write panicked".into()));
        }
    }
}

struct Unqueue<'a> {
    channel: &'a ChannelSeq,
    ticket: u64,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        let mut queue = self
            .channel
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.retain(|p| p.ticket != self.ticket);
    }
}

fn try_outcome(
    outcome: &mut oneshot::Receiver<Result<Vec<Appended>, StoreError>>,
) -> Option<Result<Vec<Appended>, StoreError>> {
    match outcome.try_recv() {
        Ok(result) => Some(result),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(StoreError::Backend(
            "a group write was abandoned".into(),
        ))),
    }
}

async fn commit(
    inner: Arc<Inner>,
    key: ChannelKey,
    mut state: OwnedMutexGuard<SeqState>,
    group: Vec<Pending>,
) {
    let calls: Vec<&[NewMessage]> = group.iter().map(|p| p.messages.as_slice()).collect();
    match inner.write_group(&key, &mut state, &calls).await {
        Ok(outcomes) => {
            for (pending, outcome) in group.into_iter().zip(outcomes) {
                let _ = pending.reply.send(Ok(outcome));
            }
        }
        Err(failure) => {
            // Read the durable head again before the next offset: whatever
            // part of the group was written stays, and is continued after.
            state.head = None;
            if failure.ambiguous {
                state.cooldown_until = Some(Instant::now() + cooldown(&inner));
            }
            tracing::debug!(tenant = &*key.tenant, channel = &*key.channel,
                error = %failure.error, "group write failed");
            for pending in group {
                let _ = pending.reply.send(Err(failure.error.clone()));
            }
        }
    }
}

/// How long a channel waits after a write with an unknown outcome. The
/// database's own write timeout (2 s by default on Cassandra and ScyllaDB)
/// is shorter than our request timeout, so by then the coordinator has
/// finished with the write, applied or not, and a head read sees the result.
fn cooldown(inner: &Inner) -> Duration {
    inner.config.request_timeout
}
