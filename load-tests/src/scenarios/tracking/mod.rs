//! `tracking`: live positions. N entities spread evenly over C tracking
//! channels `track:load-{i}`, each reporting R positions per second; M
//! watchers spread evenly over the same channels, each watching its channel
//! (so each sees N/C entities).
//!
//! Entities are not one connection each: a few tracker connections carry
//! them all (entity `e` rides tracker `e % T`), each kept under the
//! gateway's per-connection `[limits] track_rate_per_sec` (`--track-limit`),
//! since positions over it are dropped. Every tracker sends on an absolute
//! schedule, its entities round robin, and tracker `k` starts `k / (N × R)`
//! of a second late, so together they send evenly spaced positions at the
//! total rate instead of bursts.
//!
//! Each position carries the wall-clock time it was sent (Unix ms). The
//! figure that matters is staleness: how old a position is when a watcher
//! gets it (receipt time − its timestamp, both on this machine's clock),
//! over every live update (the snapshot a watch starts with is left out).
//! Positions travel as QUIC datagrams and are latest-wins, so the network
//! or the gateway may drop some by design; delivered/s against the
//! expected rate shows how many arrived. With `--metrics` the gateway's
//! own counters (accepted, dropped by reason, delivered) are reported too.
//!
//! The parts: `tracker` sends the positions, `watcher` receives them and
//! times their staleness, `gateway` reads the gateway's counters, and
//! `figures` holds the report and its table.

mod figures;
mod gateway;
mod tracker;
mod watcher;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::Client;
use tokio::task::JoinSet;

use super::traffic::unix_ms;
use crate::common::{CommonArgs, Timeline};
use crate::live::{Kind, Live};
use crate::progress::Monitor;

pub use figures::TrackingReport;
pub use gateway::GatewayCounts;

/// Share of `--track-limit` a tracker connection is given when the
/// scenario picks the tracker count: timer jitter never reaches the limit.
const HEADROOM: f64 = 0.8;
/// The gateway's default most positions per entity per second a watcher
/// receives (`[[channels]] max_position_rate`), for the expected rate when
/// `--max-rate 0` leaves it to the namespace.
const DEFAULT_MAX_POSITION_RATE: u32 = 10;
/// Longest watchers keep listening after the trackers stop, for the
/// positions still in flight (capped by `--drain`).
const SETTLE: Duration = Duration::from_secs(1);

/// Flags of the tracking scenario.
#[derive(Debug, Clone, Args)]
pub struct TrackingArgs {
    /// Tracked entities (couriers, vehicles), spread evenly over the
    /// channels.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub entities: u32,
    /// Positions per second each entity reports (at most 100: timestamps
    /// are milliseconds and must grow).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Watchers, each on its own connection, spread evenly over the
    /// channels.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub watchers: u32,
    /// Tracking channels: `track:<prefix>-0` … `track:<prefix>-(C-1)`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub channels: u32,
    /// Positions per entity per second each watcher asks for; 0 = the
    /// namespace's maximum (10 unless configured).
    #[arg(long, default_value_t = 0)]
    pub max_rate: u32,
    /// Tracker connections the entities are spread over; 0 = as few as
    /// keep each at or under 80 % of --track-limit.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub trackers: u32,
    /// The gateway's `[limits] track_rate_per_sec` (default 50): positions
    /// a connection reports beyond it are dropped, so no tracker connection
    /// is given more. `bench tracking` starts its gateway with this value.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub track_limit: u32,
    /// Staleness p99 the run is held against, ms (reported as met or not;
    /// the verdict only covers delivery).
    #[arg(long, default_value_t = 50.0)]
    pub staleness_goal_ms: f64,
    /// The gateway's metrics, http://HOST:PORT/metrics (its ops listener),
    /// for the positions it accepted, dropped (by reason) and delivered.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Channel names are `track:<prefix>-<i>`.
    #[arg(long, default_value = "load")]
    pub prefix: String,
}

impl TrackingArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if !self.rate.is_finite() || self.rate <= 0.0 || self.rate > 100.0 {
            bail!("--rate must be positions per second per entity, above 0 and at most 100");
        }
        if !self.staleness_goal_ms.is_finite() || self.staleness_goal_ms <= 0.0 {
            bail!("--staleness-goal-ms must be above 0");
        }
        if self.prefix.is_empty()
            || self
                .prefix
                .contains(|c: char| c == ':' || c.is_whitespace())
        {
            bail!("--prefix must be non-empty, without ':' or spaces");
        }
        Ok(())
    }

    /// Positions per second over all entities.
    pub fn total_rate(&self) -> f64 {
        f64::from(self.entities) * self.rate
    }

    /// How many tracker connections carry the entities; fails when one
    /// would have to report more than the gateway's limit.
    pub fn tracker_count(&self) -> anyhow::Result<u32> {
        let wanted = if self.trackers == 0 {
            let budget = f64::from(self.track_limit) * HEADROOM;
            (self.total_rate() / budget).ceil().max(1.0) as u32
        } else {
            self.trackers
        };
        let count = wanted.min(self.entities);
        let busiest = self.busiest_rate(count);
        if busiest > f64::from(self.track_limit) {
            bail!(
                "a tracker connection would report {busiest:.0} positions/s, over --track-limit {} \
                 (the gateway's [limits] track_rate_per_sec, which drops the rest): use more \
                 --trackers, or raise both the gateway's limit and --track-limit",
                self.track_limit
            );
        }
        Ok(count)
    }

    /// Positions per second of the tracker that carries the most entities.
    fn busiest_rate(&self, trackers: u32) -> f64 {
        f64::from(self.entities.div_ceil(trackers.max(1))) * self.rate
    }

    /// Positions per entity per second a watcher gets: the entity's rate,
    /// capped by the watcher's.
    fn delivered_per_entity(&self) -> f64 {
        let cap = if self.max_rate == 0 {
            DEFAULT_MAX_POSITION_RATE
        } else {
            self.max_rate
        };
        self.rate.min(f64::from(cap))
    }

    /// Positions per second all watchers together should receive.
    pub fn expected_delivery_rate(&self) -> f64 {
        let per_channel = |count: u32, channel: u32| {
            u64::from(count / self.channels) + u64::from(channel < count % self.channels)
        };
        let pairs: u64 = (0..self.channels)
            .map(|c| per_channel(self.entities, c) * per_channel(self.watchers, c))
            .sum();
        pairs as f64 * self.delivered_per_entity()
    }

    fn channel(&self, index: u32) -> Arc<str> {
        Arc::from(format!("track:{}-{index}", self.prefix).as_str())
    }
}

/// Runs the scenario.
pub async fn run(common: &CommonArgs, args: &TrackingArgs) -> anyhow::Result<TrackingReport> {
    args.validate()?;
    let trackers = args.tracker_count()?;
    let setup = common.setup().await?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "tracking");
    let channels: Vec<Arc<str>> = (0..args.channels).map(|c| args.channel(c)).collect();

    monitor.phase(format!("connecting {} watchers", args.watchers), None);
    let (watcher_clients, watches) = watcher::connect(&setup, args, &channels, &live).await?;
    monitor.phase(format!("connecting {trackers} trackers"), None);
    let tracker_clients = tracker::connect(&setup, args, trackers, &live).await?;
    let metrics_before = match &args.metrics {
        Some(url) => Some(GatewayCounts::read(url).await),
        None => None,
    };

    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), setup.warmup, setup.duration, setup.drain);
    live.set_timeline(timeline);
    let stop_at = timeline.measure_until + SETTLE.min(setup.drain);
    monitor.phase("tracking", Some(setup.warmup + setup.duration));
    let mut watching = JoinSet::new();
    for (index, watch) in watches.into_iter().enumerate() {
        let probe = live.probe(Kind::Delivery, index);
        watching.spawn(watcher::run(watch, timeline, stop_at, probe));
    }
    let mut tracking = JoinSet::new();
    for (index, client) in tracker_clients.items.iter().enumerate() {
        let plan = tracker::Plan::new(args, &channels, trackers, index as u32, timeline);
        let probe = live.probe(Kind::Ack, index);
        tracking.spawn(tracker::run(client.clone(), plan, probe));
    }
    let mut sent = tracker::Outcome::default();
    while let Some(outcome) = tracking.join_next().await {
        sent.merge(outcome.context("a tracker task failed")?);
    }
    monitor.phase("settling", None);
    let mut received = watcher::Outcome::default();
    while let Some(outcome) = watching.join_next().await {
        received.merge(outcome.context("a watcher task failed")?);
    }
    let (gateway, gateway_error) =
        GatewayCounts::change(args.metrics.as_deref(), metrics_before).await;

    let reconnects = watcher_clients
        .items
        .iter()
        .chain(&tracker_clients.items)
        .map(Client::reconnect_count)
        .sum();
    monitor.phase("closing", None);
    setup.pool.close(&watcher_clients.items).await;
    setup.pool.close(&tracker_clients.items).await;
    let series = monitor.finish().await;

    let window = timeline.window().as_secs_f64();
    let staleness = live.delivery_latency().summary();
    let mut report = TrackingReport {
        scenario: "tracking",
        started_unix_ms,
        server: common.server.clone(),
        entities: args.entities,
        rate_per_entity: args.rate,
        channels: args.channels,
        watchers: args.watchers,
        max_rate: args.max_rate,
        trackers,
        tracker_rate: args.busiest_rate(trackers),
        track_limit: args.track_limit,
        warmup_s: common.warmup,
        duration_s: window,
        watchers_connect_s: watcher_clients.elapsed.as_secs_f64(),
        watcher_connect_ms: watcher_clients.latency.summary(),
        trackers_connect_s: tracker_clients.elapsed.as_secs_f64(),
        target_send_rate: args.total_rate(),
        send_rate: sent.sent_in_window as f64 / window,
        sent_total: sent.sent,
        send_errors: sent.errors,
        first_send_error: sent.first_error,
        skipped: sent.skipped,
        send_lag: sent.lag.summary(),
        delivery_rate: received.delivered_in_window as f64 / window,
        expected_delivery_rate: args.expected_delivery_rate(),
        delivered_total: received.delivered,
        snapshot_positions: received.snapshot,
        staleness_goal_met: staleness.count > 0 && staleness.p99_ms < args.staleness_goal_ms,
        staleness,
        staleness_goal_ms: args.staleness_goal_ms,
        watches_failed: received.failed,
        first_watch_error: received.error,
        reconnects,
        gateway,
        gateway_error,
        passed: false,
        failures: Vec::new(),
        series,
    };
    report.failures = figures::judge(&report);
    report.passed = report.failures.is_empty();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrackingArgs,
    }

    /// The scenario's flags as parsed from `flags`.
    pub(super) fn args(flags: &[&str]) -> TrackingArgs {
        let mut argv = vec!["t"];
        argv.extend(flags);
        Cli::parse_from(argv).args
    }

    #[test]
    fn defaults_are_the_aim_and_fit_the_rate_limit() {
        let a = args(&[]);
        assert_eq!((a.entities, a.watchers, a.channels), (10_000, 1000, 100));
        assert!((a.rate - 1.0).abs() < f64::EPSILON);
        // 10,000/s at 40/s per connection (80 % of 50).
        assert_eq!(a.tracker_count().expect("fits"), 250);
        assert!(a.busiest_rate(250) <= 40.0);
        // 100 entities × 10 watchers per channel × 100 channels × 1/s.
        assert!((a.expected_delivery_rate() - 100_000.0).abs() < 1e-6);
    }

    #[test]
    fn too_few_trackers_are_refused() {
        assert!(args(&["--trackers", "100"]).tracker_count().is_err());
        assert_eq!(
            args(&["--trackers", "100", "--track-limit", "100"])
                .tracker_count()
                .expect("fits"),
            100
        );
        // Never more trackers than entities.
        assert_eq!(
            args(&["--entities", "3", "--trackers", "10"])
                .tracker_count()
                .expect("fits"),
            3
        );
        // One entity alone over the limit cannot be helped.
        assert!(
            args(&["--entities", "1", "--rate", "60"])
                .tracker_count()
                .is_err()
        );
    }

    #[test]
    fn uneven_spreads_count_exactly_and_rates_are_capped() {
        // 5 entities over 2 channels (3 + 2), 3 watchers (2 + 1).
        let a = args(&["--entities", "5", "--channels", "2", "--watchers", "3"]);
        assert!((a.expected_delivery_rate() - 8.0).abs() < 1e-9);
        // One entity, channel and watcher at 20/s: capped by --max-rate, or
        // by the namespace's default maximum without it.
        let one = [
            "--entities",
            "1",
            "--channels",
            "1",
            "--watchers",
            "1",
            "--rate",
            "20",
        ];
        let capped = args(&[&one[..], &["--max-rate", "4"]].concat());
        assert!((capped.expected_delivery_rate() - 4.0).abs() < 1e-9);
        let default_cap = args(&one);
        assert!((default_cap.expected_delivery_rate() - 10.0).abs() < 1e-9);
    }
}
