//! The tracker connections: each carries a share of the entities and
//! reports their positions on an absolute schedule, kept under the
//! gateway's per-connection track rate limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_client::{Client, Position};

use super::TrackingArgs;
use crate::clients::{Connected, connect_all};
use crate::common::{Setup, Timeline};
use crate::live::{Live, Probe};
use crate::stats::Latency;

/// How often a tracker hands its send count to the live counters.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Entity ids are `load-<n>`; every tracker token may track them all.
const ENTITY_PATTERN: &str = "load-*";

/// Connects the tracker connections on the sockets after the watchers'.
pub(super) async fn connect(
    setup: &Setup,
    args: &TrackingArgs,
    count: u32,
    live: &Arc<Live>,
) -> anyhow::Result<Connected<Client>> {
    let first = args.watchers as usize;
    eprintln!(
        "connecting {count} trackers for {} entities ({:.0} positions/s each at most, limit {}/s)",
        args.entities,
        args.busiest_rate(count),
        args.track_limit
    );
    connect_all(
        count as usize,
        setup.connect_concurrency,
        |index| async move {
            let token = setup
                .minter
                .tracker_token(&format!("load-tracker-{index}"), &[ENTITY_PATTERN])?;
            let config = setup
                .pool
                .client_config(token, "quiver-load/tracking-tracker");
            let client = setup.pool.connect(first + index, config).await?;
            live.connection(1);
            Ok(client)
        },
    )
    .await
}

/// One tracker connection's share: its entities and its schedule.
#[derive(Debug)]
pub(super) struct Plan {
    /// (entity id, its channel), sent round robin.
    entities: Vec<(String, Arc<str>)>,
    /// Between two sends of this tracker.
    interval: Duration,
    /// First send after the start.
    phase: Duration,
    timeline: Timeline,
}

impl Plan {
    pub(super) fn new(
        args: &TrackingArgs,
        channels: &[Arc<str>],
        trackers: u32,
        index: u32,
        timeline: Timeline,
    ) -> Self {
        // Entity e rides tracker e % T and lives on channel e % C.
        let entities: Vec<(String, Arc<str>)> = (index..args.entities)
            .step_by(trackers as usize)
            .map(|e| {
                (
                    format!("load-{e}"),
                    Arc::clone(&channels[(e % args.channels) as usize]),
                )
            })
            .collect();
        let rate = entities.len() as f64 * args.rate;
        Self {
            interval: Duration::from_secs_f64(1.0 / rate.max(1e-9)),
            phase: Duration::from_secs_f64(f64::from(index) / args.total_rate()),
            entities,
            timeline,
        }
    }
}

/// What one or all trackers did.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) sent: u64,
    pub(super) sent_in_window: u64,
    pub(super) skipped: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) lag: Latency,
}

impl Outcome {
    pub(super) fn merge(&mut self, other: Outcome) {
        self.sent += other.sent;
        self.sent_in_window += other.sent_in_window;
        self.skipped += other.skipped;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.lag.merge(&other.lag);
    }
}

/// Reports the plan's positions until the window ends. A tracker more than
/// one interval behind its schedule skips the slots it missed (and counts
/// them): catching up in a burst would run into the rate limit, and a
/// position sent late is just an older fix.
pub(super) async fn run(client: Client, plan: Plan, mut probe: Probe) -> Outcome {
    let mut outcome = Outcome::default();
    if plan.entities.is_empty() {
        return outcome;
    }
    let first = plan.timeline.start + plan.phase;
    let interval_s = plan.interval.as_secs_f64();
    let mut slot: u64 = 0;
    let mut flushed = Instant::now();
    loop {
        let due = first + Duration::from_secs_f64(interval_s * slot as f64);
        if due >= plan.timeline.measure_until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        let behind = now.saturating_duration_since(due);
        if behind > plan.interval {
            let missed = (behind.as_secs_f64() / interval_s).floor() as u64;
            outcome.skipped += missed;
            slot += missed;
            continue;
        }
        let (entity, channel) = &plan.entities[(slot % plan.entities.len() as u64) as usize];
        // Somewhere around Berlin, moving a little with every fix.
        let step = slot as f64 * 1e-5;
        let position = Position::new(entity.as_str(), 52.52 + step.sin() * 0.01, 13.40 + step);
        match client.track(channel, &position).await {
            Ok(()) => {
                probe.count();
                // Sends carry no latency, so the probe never flushes by
                // itself: keep the live counter (progress, charts) current.
                if now.duration_since(flushed) >= FLUSH_EVERY {
                    probe.flush();
                    flushed = now;
                }
                outcome.sent += 1;
                if plan.timeline.measures(now) {
                    outcome.sent_in_window += 1;
                    outcome.lag.record(behind);
                }
            }
            Err(error) => {
                probe.error();
                outcome.errors += 1;
                if outcome.first_error.is_none() {
                    outcome.first_error = Some(error.to_string());
                }
            }
        }
        slot += 1;
    }
    probe.flush();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::tracking::tests::args;

    #[test]
    fn trackers_share_the_entities_and_the_period() {
        let a = args(&[
            "--entities",
            "10",
            "--channels",
            "4",
            "--trackers",
            "3",
            "--rate",
            "2",
        ]);
        let channels: Vec<Arc<str>> = (0..4).map(|c| a.channel(c)).collect();
        let start = Instant::now();
        let t = Timeline::new(
            start,
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let plans: Vec<Plan> = (0..3).map(|k| Plan::new(&a, &channels, 3, k, t)).collect();
        let all: Vec<&str> = plans
            .iter()
            .flat_map(|p| p.entities.iter().map(|(e, _)| e.as_str()))
            .collect();
        assert_eq!(all.len(), 10);
        assert_eq!(
            plans[1].entities[1],
            ("load-4".to_owned(), Arc::from("track:load-0"))
        );
        // Tracker 0 carries 4 entities at 2/s: one send every 125 ms.
        assert_eq!(plans[0].interval, Duration::from_millis(125));
        // Trackers start 1/20 s apart.
        assert_eq!(plans[2].phase, Duration::from_millis(100));
    }
}
