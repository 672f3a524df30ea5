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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::{Client, Position, Watch};
use serde::Serialize;
use tokio::task::JoinSet;

use super::chat::verdict;
use super::traffic::unix_ms;
use crate::clients::{Connected, connect_all};
use crate::common::{CommonArgs, Setup, Timeline};
use crate::live::{Kind, Live, Probe};
use crate::memory::{http_get, labelled};
use crate::progress::{Monitor, Series};
use crate::report::{Figures, Table, grouped, ms, per_sec, percentiles};
use crate::stats::{Latency, Summary};

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
/// How often a tracker hands its send count to the live counters.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Entity ids are `load-<n>`; every tracker token may track them all.
const ENTITY_PATTERN: &str = "load-*";

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

/// What the gateway's counters said (differences over the run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayCounts {
    /// Positions taken as their entity's newest.
    pub accepted: u64,
    /// Positions not taken, by reason (`rate_limited`, `stale`, ...).
    pub dropped: BTreeMap<String, u64>,
    /// Positions sent to watchers, by transport (`datagram`, `stream`).
    pub delivered: BTreeMap<String, u64>,
}

impl GatewayCounts {
    async fn read(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("--metrics {url}: use http://HOST:PORT/metrics"))?;
        let (addr, path) = match rest.split_once('/') {
            Some((addr, path)) => (addr, format!("/{path}")),
            None => (rest, "/metrics".to_owned()),
        };
        let body = http_get(addr, &path).await?;
        let accepted = labelled(&body, "quiver_positions_accepted_total", "")
            .into_iter()
            .map(|(_, v)| v)
            .sum();
        Ok(Self {
            accepted,
            dropped: labelled(&body, "quiver_positions_dropped_total", "reason")
                .into_iter()
                .collect(),
            delivered: labelled(&body, "quiver_positions_delivered_total", "via")
                .into_iter()
                .collect(),
        })
    }

    fn since(&self, before: &Self) -> Self {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.saturating_sub(then.get(k).copied().unwrap_or(0)),
                    )
                })
                .collect()
        };
        Self {
            accepted: self.accepted.saturating_sub(before.accepted),
            dropped: diff(&self.dropped, &before.dropped),
            delivered: diff(&self.delivered, &before.delivered),
        }
    }

    fn dropped(&self, reason: &str) -> u64 {
        self.dropped.get(reason).copied().unwrap_or(0)
    }
}

/// Every figure of a tracking run.
#[derive(Debug, Clone, Serialize)]
pub struct TrackingReport {
    pub scenario: &'static str,
    pub started_unix_ms: u64,
    pub server: String,
    pub entities: u32,
    pub rate_per_entity: f64,
    pub channels: u32,
    pub watchers: u32,
    /// As asked for (0 = the namespace's maximum).
    pub max_rate: u32,
    pub trackers: u32,
    /// Positions per second of the busiest tracker connection.
    pub tracker_rate: f64,
    /// The gateway's per-connection limit the trackers were kept under.
    pub track_limit: u32,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub watchers_connect_s: f64,
    /// Per watcher: connect plus the watch round trip.
    pub watcher_connect_ms: Summary,
    pub trackers_connect_s: f64,
    pub target_send_rate: f64,
    /// Positions sent per second in the window.
    pub send_rate: f64,
    pub sent_total: u64,
    pub send_errors: u64,
    pub first_send_error: Option<String>,
    /// Positions a late tracker skipped rather than send in a burst.
    pub skipped: u64,
    /// How far behind its schedule a tracker sent (load generator lag).
    pub send_lag: Summary,
    /// Live positions received per second in the window, all watchers.
    pub delivery_rate: f64,
    pub expected_delivery_rate: f64,
    pub delivered_total: u64,
    /// Positions received as part of a watch's opening snapshot.
    pub snapshot_positions: u64,
    /// Receipt time − the position's timestamp, live updates in the window.
    pub staleness: Summary,
    pub staleness_goal_ms: f64,
    pub staleness_goal_met: bool,
    pub watches_failed: u64,
    pub first_watch_error: Option<String>,
    pub reconnects: u64,
    /// From --metrics; `None` when not asked for or unreachable.
    pub gateway: Option<GatewayCounts>,
    pub gateway_error: Option<String>,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
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
    let (watcher_clients, watches) = connect_watchers(&setup, args, &channels, &live).await?;
    monitor.phase(format!("connecting {trackers} trackers"), None);
    let tracker_clients = connect_trackers(&setup, args, trackers, &live).await?;
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
        watching.spawn(run_watcher(watch, timeline, stop_at, probe));
    }
    let mut tracking = JoinSet::new();
    for (index, client) in tracker_clients.items.iter().enumerate() {
        let plan = TrackerPlan::new(args, &channels, trackers, index as u32, timeline);
        let probe = live.probe(Kind::Ack, index);
        tracking.spawn(run_tracker(client.clone(), plan, probe));
    }
    let mut sent = TrackerOutcome::default();
    while let Some(outcome) = tracking.join_next().await {
        sent.merge(outcome.context("a tracker task failed")?);
    }
    monitor.phase("settling", None);
    let mut received = WatcherOutcome::default();
    while let Some(outcome) = watching.join_next().await {
        received.merge(outcome.context("a watcher task failed")?);
    }
    let (gateway, gateway_error) = match (&args.metrics, metrics_before) {
        (Some(url), Some(Ok(before))) => match GatewayCounts::read(url).await {
            Ok(after) => (Some(after.since(&before)), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        },
        (_, Some(Err(e))) => (None, Some(format!("{e:#}"))),
        _ => (None, None),
    };

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
    report.failures = judge(&report);
    report.passed = report.failures.is_empty();
    Ok(report)
}

/// Connects every watcher and starts its watch; the connect latency
/// includes the watch round trip.
async fn connect_watchers(
    setup: &Setup,
    args: &TrackingArgs,
    channels: &[Arc<str>],
    live: &Arc<Live>,
) -> anyhow::Result<(Connected<Client>, Vec<Watch>)> {
    let count = args.watchers as usize;
    eprintln!(
        "connecting {count} watchers to {} channels ({} at once)",
        channels.len(),
        setup.connect_concurrency
    );
    let connected = connect_all(count, setup.connect_concurrency, |index| {
        let channel = Arc::clone(&channels[index % channels.len()]);
        async move {
            let token = setup.minter.token(&format!("load-watcher-{index}"))?;
            let config = setup
                .pool
                .client_config(token, "quiver-load/tracking-watch");
            let client = setup.pool.connect(index, config).await?;
            live.connection(1);
            let watch = client
                .watch(&channel, args.max_rate)
                .await
                .with_context(|| format!("watcher {index} cannot watch {channel}"))?;
            anyhow::Ok((client, watch))
        }
    })
    .await?;
    let (clients, watches) = connected.items.into_iter().unzip();
    Ok((
        Connected {
            items: clients,
            latency: connected.latency,
            elapsed: connected.elapsed,
        },
        watches,
    ))
}

/// Connects the tracker connections on the sockets after the watchers'.
async fn connect_trackers(
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
struct TrackerPlan {
    /// (entity id, its channel), sent round robin.
    entities: Vec<(String, Arc<str>)>,
    /// Between two sends of this tracker.
    interval: Duration,
    /// First send after the start.
    phase: Duration,
    timeline: Timeline,
}

impl TrackerPlan {
    fn new(
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
struct TrackerOutcome {
    sent: u64,
    sent_in_window: u64,
    skipped: u64,
    errors: u64,
    first_error: Option<String>,
    lag: Latency,
}

impl TrackerOutcome {
    fn merge(&mut self, other: TrackerOutcome) {
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
async fn run_tracker(client: Client, plan: TrackerPlan, mut probe: Probe) -> TrackerOutcome {
    let mut outcome = TrackerOutcome::default();
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

/// What one or all watchers received.
#[derive(Debug, Default)]
struct WatcherOutcome {
    delivered: u64,
    delivered_in_window: u64,
    snapshot: u64,
    failed: u64,
    error: Option<String>,
}

impl WatcherOutcome {
    fn merge(&mut self, other: WatcherOutcome) {
        self.delivered += other.delivered;
        self.delivered_in_window += other.delivered_in_window;
        self.snapshot += other.snapshot;
        self.failed += other.failed;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

/// Microseconds since the Unix epoch.
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How old a position stamped `timestamp_ms` is at `now_us` (zero if the
/// stamp is ahead: one clock, so only by rounding).
fn staleness(now_us: u64, timestamp_ms: u64) -> Duration {
    Duration::from_micros(now_us.saturating_sub(timestamp_ms.saturating_mul(1000)))
}

/// Takes positions until `stop_at`, timing every live one.
async fn run_watcher(
    mut watch: Watch,
    timeline: Timeline,
    stop_at: Instant,
    mut probe: Probe,
) -> WatcherOutcome {
    let mut outcome = WatcherOutcome::default();
    let stop = tokio::time::sleep_until(stop_at.into());
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = watch.next() => event,
            () = &mut stop => break,
        };
        match event {
            Some(Ok(event)) if event.snapshot => outcome.snapshot += 1,
            Some(Ok(event)) => {
                let age = staleness(unix_us(), event.position.timestamp_ms);
                let now = Instant::now();
                probe.record(age, now);
                outcome.delivered += 1;
                if timeline.measures(now) {
                    outcome.delivered_in_window += 1;
                }
            }
            Some(Err(error)) => {
                probe.error();
                outcome.failed += 1;
                outcome.error = Some(format!("{}: {error}", watch.channel()));
                break;
            }
            None => {
                probe.error();
                outcome.failed += 1;
                outcome.error = Some(format!("{}: the watch ended", watch.channel()));
                break;
            }
        }
    }
    probe.flush();
    outcome
}

fn judge(r: &TrackingReport) -> Vec<String> {
    let mut failures = Vec::new();
    if r.delivered_total == 0 {
        failures.push("no position was delivered".into());
    }
    if r.watches_failed > 0 {
        failures.push(format!(
            "{} watches ended early ({})",
            r.watches_failed,
            r.first_watch_error.as_deref().unwrap_or("no error")
        ));
    }
    if r.send_errors > 0 {
        failures.push(format!("{} positions could not be sent", r.send_errors));
    }
    if let Some(gateway) = &r.gateway {
        let limited = gateway.dropped("rate_limited");
        if limited > 0 {
            failures.push(format!(
                "the gateway dropped {limited} positions over its track rate limit: \
                 --track-limit {} is above its [limits] track_rate_per_sec",
                r.track_limit
            ));
        }
        let forbidden = gateway.dropped("forbidden") + gateway.dropped("invalid");
        if forbidden > 0 {
            failures.push(format!(
                "the gateway refused {forbidden} positions (forbidden or invalid)"
            ));
        }
    }
    failures
}

impl TrackingReport {
    /// `met` or `not met (p99 X ms, Y ms over)`.
    pub fn goal_text(&self) -> String {
        if self.staleness.count == 0 {
            "no samples".into()
        } else if self.staleness_goal_met {
            format!("met (p99 {} ms)", ms(self.staleness.p99_ms))
        } else {
            format!(
                "not met (p99 {} ms, {} ms over)",
                ms(self.staleness.p99_ms),
                ms(self.staleness.p99_ms - self.staleness_goal_ms)
            )
        }
    }

    fn gateway_text(&self) -> String {
        let Some(g) = &self.gateway else {
            return match &self.gateway_error {
                Some(e) => format!("- ({e})"),
                None => "- (pass --metrics http://HOST:PORT/metrics)".into(),
            };
        };
        let dropped: Vec<String> = g
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(reason, n)| format!("{reason} {}", grouped(*n)))
            .collect();
        let delivered: Vec<String> = g
            .delivered
            .iter()
            .map(|(via, n)| format!("{via} {}", grouped(*n)))
            .collect();
        format!(
            "accepted {}, dropped {}, delivered {} (whole run)",
            grouped(g.accepted),
            if dropped.is_empty() {
                "0".into()
            } else {
                dropped.join(", ")
            },
            delivered.join(", ")
        )
    }
}

impl Figures for TrackingReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let max_rate = if self.max_rate == 0 {
            "namespace max".to_owned()
        } else {
            format!("{}/s", self.max_rate)
        };
        let mut t = Table::new(format!(
            "quiver-load tracking: {} entities × {}/s over {} channels, {} watchers (max rate {max_rate})",
            grouped(u64::from(self.entities)),
            self.rate_per_entity,
            grouped(u64::from(self.channels)),
            grouped(u64::from(self.watchers)),
        ));
        t.row(
            "connect",
            format!(
                "{} watchers in {:.2} s, {} trackers in {:.2} s",
                grouped(u64::from(self.watchers)),
                self.watchers_connect_s,
                self.trackers,
                self.trackers_connect_s
            ),
        )
        .row(
            "trackers",
            format!(
                "{} connections, up to {:.0} positions/s each (limit {}/s)",
                self.trackers, self.tracker_rate, self.track_limit
            ),
        )
        .row(
            "positions sent",
            format!(
                "{} (target {}), {} skipped",
                per_sec(self.send_rate),
                per_sec(self.target_send_rate),
                grouped(self.skipped)
            ),
        )
        .row(
            "positions delivered",
            format!(
                "{} (expected {}, {:.1} %)",
                per_sec(self.delivery_rate),
                per_sec(self.expected_delivery_rate),
                100.0 * self.delivery_rate / self.expected_delivery_rate.max(1e-9)
            ),
        )
        .row("staleness ms", percentiles(&self.staleness))
        .row(
            "staleness goal",
            format!(
                "p99 < {} ms: {}",
                ms(self.staleness_goal_ms),
                self.goal_text()
            ),
        )
        .row("tracker lag ms", percentiles(&self.send_lag))
        .row("gateway", self.gateway_text())
        .row("snapshot positions", grouped(self.snapshot_positions))
        .row(
            "errors",
            format!(
                "{} send, {} watches ended, {} reconnects",
                grouped(self.send_errors),
                self.watches_failed,
                self.reconnects
            ),
        );
        if let Some(e) = &self.first_send_error {
            t.row("first send error", e.clone());
        }
        if let Some(e) = &self.first_watch_error {
            t.row("first watch error", e.clone());
        }
        t.row("result", verdict(self.passed, &self.failures));
        t
    }

    fn passed(&self) -> bool {
        self.passed
    }

    fn series(&self) -> &Series {
        &self.series
    }
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

    fn args(flags: &[&str]) -> TrackingArgs {
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
        let capped = args(&[
            "--entities",
            "1",
            "--channels",
            "1",
            "--watchers",
            "1",
            "--rate",
            "20",
            "--max-rate",
            "4",
        ]);
        assert!((capped.expected_delivery_rate() - 4.0).abs() < 1e-9);
        let default_cap = args(&[
            "--entities",
            "1",
            "--channels",
            "1",
            "--watchers",
            "1",
            "--rate",
            "20",
        ]);
        assert!((default_cap.expected_delivery_rate() - 10.0).abs() < 1e-9);
    }

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
        let plans: Vec<TrackerPlan> = (0..3)
            .map(|k| TrackerPlan::new(&a, &channels, 3, k, t))
            .collect();
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

    #[test]
    fn staleness_is_receipt_minus_stamp() {
        assert_eq!(
            staleness(1_000_012_500, 1_000_000),
            Duration::from_micros(12_500)
        );
        assert_eq!(staleness(999_000, 1_000), Duration::ZERO);
    }
}
