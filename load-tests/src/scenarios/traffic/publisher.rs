//! One publisher: sends on an absolute schedule (or as fast as acks come
//! back), keeps at most `inflight` publishes outstanding, and records
//! publish→ack latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use quiver_client::{Client, ClientError, PublishAck};

use crate::common::Timeline;
use crate::live::Probe;
use crate::payload::{self, Clock, Stamp};

/// What one publisher is asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: u32,
    pub channel: Arc<str>,
    /// Messages per second for this publisher; `None` = as fast as acks
    /// allow.
    pub rate: Option<f64>,
    /// Where this publisher's schedule starts, so that several publishers
    /// interleave evenly instead of sending in lockstep.
    pub phase: Duration,
    pub inflight: usize,
    pub size: usize,
    pub clock: Clock,
    pub timeline: Timeline,
}

/// What one publisher saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Acks received in the measurement window.
    pub acked_in_window: u64,
    /// Publishes started over the whole run.
    pub sent: u64,
    /// Acks over the whole run.
    pub acked: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Messages the schedule called for that were never sent, because acks
    /// came back too slowly for `inflight` to allow them.
    pub unsent: u64,
    /// Highest offset acked: subscribers are done once they reach it.
    pub max_offset: u64,
}

/// The absolute send time of message `seq`. Computed from the start rather
/// than by adding a period per message, so rounding never accumulates into
/// drift and a late publisher catches up in a burst (the offered load stays
/// what was asked for).
pub fn due(start: Instant, rate: f64, seq: u64) -> Instant {
    start + Duration::from_secs_f64(seq as f64 / rate)
}

/// How many messages the schedule wanted sent before `until`.
pub fn scheduled_before(start: Instant, rate: f64, until: Instant) -> u64 {
    let elapsed = until.saturating_duration_since(start).as_secs_f64();
    (elapsed * rate).ceil() as u64
}

/// Publishes until the window ends, then waits for outstanding acks until
/// the drain deadline.
pub async fn run(client: Client, plan: Plan, mut probe: Probe) -> Outcome {
    let mut outcome = Outcome::default();
    let start = plan.timeline.start + plan.phase;
    let stop = plan.timeline.measure_until;
    let mut in_flight = FuturesUnordered::new();
    // A refusal with a retry hint (RateLimited) pauses sending until then,
    // as an app would, instead of spinning on refusals.
    let mut paused_until = start;
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        let next = match plan.rate {
            Some(rate) => due(start, rate, outcome.sent),
            None => now,
        }
        .max(paused_until);
        if in_flight.len() < plan.inflight && next <= now {
            // The stamp is the scheduled time, not the actual one: when the
            // publisher falls behind, that delay counts as latency instead
            // of silently lowering the offered load (coordinated omission).
            let stamp = Stamp {
                sent_nanos: plan.clock.nanos(next),
                publisher: plan.index,
                seq: outcome.sent,
            };
            let body = payload::encode(stamp, plan.size);
            let client = &client;
            let channel = &*plan.channel;
            in_flight.push(async move { (next, client.publish(channel, body).await) });
            outcome.sent += 1;
            continue;
        }
        let wake = if in_flight.len() < plan.inflight {
            next.min(stop)
        } else {
            stop
        };
        tokio::select! {
            Some((sent_at, result)) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(wait) = outcome.settle(sent_at, result, &plan.timeline, &mut probe) {
                    paused_until = paused_until.max(Instant::now() + wait);
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    if let Some(rate) = plan.rate {
        outcome.unsent = scheduled_before(start, rate, stop).saturating_sub(outcome.sent);
    }
    let deadline = plan.timeline.deadline.into();
    while let Ok(Some((sent_at, result))) =
        tokio::time::timeout_at(deadline, in_flight.next()).await
    {
        let _ = outcome.settle(sent_at, result, &plan.timeline, &mut probe);
    }
    outcome.errors += in_flight.len() as u64;
    probe.errors(in_flight.len() as u64);
    outcome
}

impl Outcome {
    /// Accounts for one answered publish; returns how long the server asked
    /// to wait before the next one, if it refused this one with a hint.
    fn settle(
        &mut self,
        sent_at: Instant,
        result: Result<PublishAck, ClientError>,
        timeline: &Timeline,
        probe: &mut Probe,
    ) -> Option<Duration> {
        match result {
            Ok(ack) => {
                let now = Instant::now();
                self.acked += 1;
                self.max_offset = self.max_offset.max(ack.offset);
                probe.record(now - sent_at, now);
                if timeline.measures(now) {
                    self.acked_in_window += 1;
                }
                None
            }
            Err(error) => {
                self.errors += 1;
                probe.error();
                self.first_error.get_or_insert_with(|| error.to_string());
                error.retry_after()
            }
        }
    }

    /// Folds another publisher's outcome into this one.
    pub fn merge(&mut self, other: Outcome) {
        self.acked_in_window += other.acked_in_window;
        self.sent += other.sent;
        self.acked += other.acked;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.unsent += other.unsent;
        self.max_offset = self.max_offset.max(other.max_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_absolute() {
        let start = Instant::now();
        // 3 messages per second: no rounding drift after many periods.
        assert_eq!(due(start, 3.0, 0), start);
        assert_eq!(due(start, 3.0, 3000), start + Duration::from_secs(1000));
        let later = start + Duration::from_millis(1000);
        assert_eq!(scheduled_before(start, 200.0, later), 200);
        assert_eq!(scheduled_before(start, 200.0, start), 0);
    }
}
