//! One subscriber: reads its subscription, records publish→deliver latency
//! and checks that offsets go up by exactly one.

use std::time::Instant;

use quiver_client::Subscription;
use tokio::sync::watch;

use crate::common::Timeline;
use crate::live::Probe;
use crate::offsets::{OffsetCheck, OffsetTally};
use crate::payload::{self, Clock};

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Deliveries received in the measurement window.
    pub delivered_in_window: u64,
    /// Deliveries over the whole run.
    pub delivered: u64,
    /// Deliveries whose payload carried no load-test header (someone else
    /// published on the channel); counted, never timed.
    pub foreign: u64,
    pub offsets: OffsetTally,
    /// The highest offset received (the head at subscribe time if none).
    pub last: u64,
    /// Offsets up to the last acked one that never arrived before the
    /// deadline; filled in by [`Outcome::settle`] once that offset is known.
    pub undelivered: u64,
    /// Subscriptions that ended early, and why the first one did.
    pub failed: u64,
    pub error: Option<String>,
}

/// Reads until the last acked offset (announced through `target` once the
/// publishers are done) has arrived, or until the run's deadline.
pub async fn run(
    mut subscription: Subscription,
    clock: Clock,
    timeline: Timeline,
    mut target: watch::Receiver<Option<u64>>,
    mut probe: Probe,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut check = OffsetCheck::new(subscription.head_offset());
    // Both futures live across iterations: creating a timer or a watch
    // waiter per message would cost more than handling the message.
    let mut deadline = std::pin::pin!(tokio::time::sleep_until(timeline.deadline.into()));
    let mut announced = std::pin::pin!(target.wait_for(Option::is_some));
    let mut last_offset: Option<u64> = None;
    loop {
        if last_offset.is_some_and(|last| check.last() >= last) {
            break;
        }
        tokio::select! {
            biased;
            next = subscription.next() => match next {
                Some(Ok(message)) => {
                    let now = Instant::now();
                    outcome.delivered += 1;
                    check.observe(message.offset);
                    let Some(stamp) = payload::decode(&message.payload) else {
                        outcome.foreign += 1;
                        probe.count();
                        continue;
                    };
                    probe.record(clock.since(stamp.sent_nanos, now), now);
                    if timeline.measures(now) {
                        outcome.delivered_in_window += 1;
                    }
                }
                Some(Err(error)) => {
                    probe.error();
                    outcome.failed = 1;
                    outcome.error = Some(error.to_string());
                    break;
                }
                None => {
                    outcome.failed = 1;
                    outcome.error = Some("the subscription ended early".into());
                    break;
                }
            },
            announced = &mut announced, if last_offset.is_none() => match announced {
                Ok(value) => last_offset = Some((*value).unwrap_or_default()),
                // The scenario gave up on the run; stop at once.
                Err(_) => break,
            },
            () = &mut deadline => break,
        }
    }
    outcome.last = check.last();
    outcome.offsets = check.tally();
    outcome
}

impl Outcome {
    /// Counts what never arrived of the messages up to `last_acked`. Done
    /// by the caller, because a subscriber that hit the deadline may not
    /// have been told the last offset.
    pub fn settle(&mut self, last_acked: u64) {
        self.undelivered = last_acked.saturating_sub(self.last);
    }

    /// Folds another subscriber's outcome into this one.
    pub fn merge(&mut self, other: Outcome) {
        self.delivered_in_window += other.delivered_in_window;
        self.delivered += other.delivered;
        self.foreign += other.foreign;
        self.offsets.add(other.offsets);
        self.undelivered += other.undelivered;
        self.failed += other.failed;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}
