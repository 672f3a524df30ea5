//! `reconnect-storm`: N subscribers drop their connections at the same
//! moment and reconnect at once, each resuming its subscription with
//! `since` = the last offset it saw, while publishers keep publishing.
//!
//! Reports the time from the drop until every client is resumed
//! (subscribed again), how many attempts failed on the way, and whether
//! any message was lost or duplicated across the storm (must be zero):
//! each subscriber's offset check spans both connections, and after the
//! publishers stop every subscriber must reach its channel's last acked
//! offset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::{Client, Subscription};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::chat::verdict;
use super::traffic::{publisher, unix_ms};
use crate::clients::connect_all;
use crate::common::{CommonArgs, Setup, Timeline};
use crate::live::{Kind, Live, Probe};
use crate::offsets::{OffsetCheck, OffsetTally};
use crate::payload::{self, Clock};
use crate::progress::{Monitor, Series};
use crate::report::{Figures, Table, grouped, percentiles};
use crate::stats::{Latency, Summary};

/// Flags of the reconnect-storm scenario.
#[derive(Debug, Clone, Args)]
pub struct ReconnectArgs {
    /// Subscribers that drop and reconnect together.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub clients: u32,
    /// Channels the subscribers spread over (one publisher each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub channels: u32,
    /// Messages per second over all channels while the storm happens.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds into the measurement window when everyone drops.
    #[arg(long, default_value_t = 2.0)]
    pub storm_after: f64,
    /// Reconnects in flight at once during the storm (0 = all at once).
    #[arg(long, default_value_t = 0)]
    pub reconnect_concurrency: u32,
}

/// Every figure of a storm.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectReport {
    pub scenario: &'static str,
    pub started_unix_ms: u64,
    pub server: String,
    pub clients: u32,
    pub channels: u32,
    pub rate: f64,
    pub connect_s: f64,
    /// Drop to the last client resumed.
    pub storm_resumed_s: f64,
    /// Per client: drop to resumed.
    pub resume_ms: Summary,
    pub resumed: u64,
    pub not_resumed: u64,
    /// Failed reconnect or resubscribe attempts (retried).
    pub failed_attempts: u64,
    pub first_error: Option<String>,
    pub published: u64,
    pub publish_errors: u64,
    pub delivered: u64,
    pub latency: Summary,
    pub gaps: u64,
    pub duplicates: u64,
    /// Acked messages some subscriber never received: lost.
    pub lost: u64,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Outcome {
    delivered: u64,
    offsets: OffsetTally,
    last: u64,
    /// Drop to resubscribed, if it got there.
    resumed_after: Option<Duration>,
    resumed_at: Option<Instant>,
    failed_attempts: u64,
    error: Option<String>,
}

/// Runs the storm.
pub async fn run(common: &CommonArgs, args: &ReconnectArgs) -> anyhow::Result<ReconnectReport> {
    if !args.rate.is_finite() || args.rate <= 0.0 {
        bail!("--rate must be above 0: a storm without traffic cannot lose anything");
    }
    let setup = Arc::new(common.setup().await?);
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "reconnect-storm");
    let prefix = format!("load-storm-{}", unix_ms());
    let channels: Vec<Arc<str>> = (0..args.channels)
        .map(|c| Arc::from(format!("{prefix}-{c}").as_str()))
        .collect();
    let count = args.clients as usize;
    monitor.phase(format!("connecting {count} subscribers"), None);
    let subs = connect_all(count, setup.connect_concurrency, |index| {
        let setup = &setup;
        let live = &live;
        let channel = Arc::clone(&channels[index % channels.len()]);
        async move {
            let (client, sub) = connect_and_subscribe(setup, index, &channel, None).await?;
            live.connection(1);
            anyhow::Ok((client, sub))
        }
    })
    .await?;
    let connect_s = subs.elapsed.as_secs_f64();
    monitor.phase("connecting publishers", None);
    let pubs = connect_all(channels.len(), setup.connect_concurrency, |index| {
        let setup = &setup;
        async move {
            let token = setup.minter.token(&format!("load-storm-pub-{index}"))?;
            let config = setup.pool.client_config(token, "quiver-load/storm-pub");
            setup.pool.connect(count + index, config).await
        }
    })
    .await?;

    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), setup.warmup, setup.duration, setup.drain);
    live.set_timeline(timeline);
    let storm_at = timeline.measure_from + Duration::from_secs_f64(args.storm_after);
    monitor.phase(
        "publishing, storm coming",
        Some(setup.warmup + setup.duration),
    );
    let (storm, storm_rx) = watch::channel(false);
    let (announce, announced) = watch::channel(None::<Arc<Vec<u64>>>);
    let permits = (args.reconnect_concurrency > 0)
        .then(|| Arc::new(Semaphore::new(args.reconnect_concurrency as usize)));
    let mut receiving = JoinSet::new();
    for (index, (client, sub)) in subs.items.into_iter().enumerate() {
        let task = Subscriber {
            setup: Arc::clone(&setup),
            index,
            channel_index: index % channels.len(),
            channel: Arc::clone(&channels[index % channels.len()]),
            clock,
            timeline,
            probe: live.probe(Kind::Delivery, index),
            live: Arc::clone(&live),
            permits: permits.clone(),
        };
        receiving.spawn(task.run(client, sub, storm_rx.clone(), announced.clone()));
    }
    let mut publishing = JoinSet::new();
    let per_channel = args.rate / channels.len() as f64;
    for (index, client) in pubs.items.iter().enumerate() {
        let plan = publisher::Plan {
            index: index as u32,
            channel: Arc::clone(&channels[index]),
            rate: Some(per_channel),
            phase: Duration::from_secs_f64(index as f64 / args.rate),
            inflight: 64,
            size: args.size.max(payload::HEADER_LEN),
            clock,
            timeline,
        };
        let client = client.clone();
        let probe = live.probe(Kind::Ack, index);
        publishing.spawn(async move { (index, publisher::run(client, plan, probe).await) });
    }
    tokio::time::sleep_until(storm_at.into()).await;
    let storm_started = Instant::now();
    monitor.phase(format!("storm: {count} clients reconnecting"), None);
    storm.send_replace(true);

    let mut heads = vec![0u64; channels.len()];
    let mut published = publisher::Outcome::default();
    while let Some(joined) = publishing.join_next().await {
        let (index, outcome) = joined.context("a publisher task failed")?;
        heads[index] = outcome.max_offset;
        published.merge(outcome);
    }
    monitor.phase("draining", None);
    let _ = announce.send(Some(Arc::new(heads.clone())));
    let mut resume = Latency::new();
    let mut totals = Outcome::default();
    let mut last_resumed = storm_started;
    let mut resumed = 0u64;
    let mut lost = 0u64;
    let mut clients = Vec::new();
    while let Some(joined) = receiving.join_next().await {
        let (outcome, channel_index, client) = joined.context("a subscriber task failed")?;
        clients.extend(client);
        lost += heads[channel_index].saturating_sub(outcome.last);
        if let (Some(after), Some(at)) = (outcome.resumed_after, outcome.resumed_at) {
            resume.record(after);
            resumed += 1;
            last_resumed = last_resumed.max(at);
        }
        totals.delivered += outcome.delivered;
        totals.offsets.add(outcome.offsets);
        totals.failed_attempts += outcome.failed_attempts;
        if totals.error.is_none() {
            totals.error = outcome.error;
        }
    }
    monitor.phase("closing", None);
    setup.pool.close(&clients).await;
    setup.pool.close(&pubs.items).await;
    let series = monitor.finish().await;

    let mut report = ReconnectReport {
        scenario: "reconnect-storm",
        started_unix_ms,
        server: common.server.clone(),
        clients: args.clients,
        channels: args.channels,
        rate: args.rate,
        connect_s,
        storm_resumed_s: (last_resumed - storm_started).as_secs_f64(),
        resume_ms: resume.summary(),
        resumed,
        not_resumed: count as u64 - resumed,
        failed_attempts: totals.failed_attempts,
        first_error: totals.error,
        published: published.acked,
        publish_errors: published.errors,
        delivered: totals.delivered,
        latency: live.delivery_latency().summary(),
        gaps: totals.offsets.gaps,
        duplicates: totals.offsets.duplicates,
        lost,
        passed: false,
        failures: Vec::new(),
        series,
    };
    let r = &mut report;
    if r.not_resumed > 0 {
        r.failures
            .push(format!("{} clients never resumed", r.not_resumed));
    }
    if r.gaps > 0 {
        r.failures
            .push(format!("{} offsets skipped (gaps)", r.gaps));
    }
    if r.duplicates > 0 {
        r.failures.push(format!("{} duplicates", r.duplicates));
    }
    if r.lost > 0 {
        r.failures.push(format!("{} acked messages lost", r.lost));
    }
    if r.published == 0 {
        r.failures.push("nothing was published".into());
    }
    r.passed = r.failures.is_empty();
    Ok(report)
}

async fn connect_and_subscribe(
    setup: &Setup,
    index: usize,
    channel: &str,
    since: Option<u64>,
) -> anyhow::Result<(Client, Subscription)> {
    let token = setup.minter.token(&format!("load-storm-{index}"))?;
    let config = setup.pool.client_config(token, "quiver-load/storm");
    let client = setup.pool.connect(index, config).await?;
    let sub = client
        .subscribe(channel, since)
        .await
        .with_context(|| format!("client {index} cannot subscribe to {channel}"))?;
    Ok((client, sub))
}

/// What woke a storm subscriber up.
enum Event {
    Storm(bool),
    Next(Option<Result<quiver_client::Message, quiver_client::ClientError>>),
    Heads(Option<u64>),
}

struct Subscriber {
    setup: Arc<Setup>,
    index: usize,
    channel_index: usize,
    channel: Arc<str>,
    clock: Clock,
    timeline: Timeline,
    probe: Probe,
    live: Arc<Live>,
    permits: Option<Arc<Semaphore>>,
}

impl Subscriber {
    /// Reads; on the storm drops the connection and resumes with `since`;
    /// stops at its channel's last acked offset or the deadline. Returns
    /// the live client so the scenario can close it.
    async fn run(
        mut self,
        client: Client,
        mut sub: Subscription,
        mut storm: watch::Receiver<bool>,
        mut announced: watch::Receiver<Option<Arc<Vec<u64>>>>,
    ) -> (Outcome, usize, Option<Client>) {
        let mut outcome = Outcome::default();
        let mut check = OffsetCheck::new(sub.head_offset());
        let mut client = Some(client);
        let mut stormed = false;
        let mut target: Option<u64> = None;
        let deadline = self.timeline.deadline;
        loop {
            if target.is_some_and(|t| check.last() >= t) {
                break;
            }
            let event = tokio::select! {
                biased;
                changed = storm.wait_for(|s| *s), if !stormed => Event::Storm(changed.is_ok()),
                next = sub.next() => Event::Next(next),
                heads = announced.wait_for(Option::is_some), if target.is_none() => {
                    Event::Heads(heads.ok().and_then(|h| h.as_ref().map(|h| h[self.channel_index])))
                }
                () = tokio::time::sleep_until(deadline.into()) => break,
            };
            match event {
                Event::Storm(fired) => {
                    stormed = true;
                    if !fired {
                        continue;
                    }
                    let dropped_at = Instant::now();
                    if let Some(old) = client.take() {
                        old.close().await;
                        self.live.connection(-1);
                    }
                    let since = check.last();
                    match self.resume(since, deadline, &mut outcome).await {
                        Some((new_client, new_sub)) => {
                            let now = Instant::now();
                            outcome.resumed_after = Some(now - dropped_at);
                            outcome.resumed_at = Some(now);
                            self.live.connection(1);
                            client = Some(new_client);
                            sub = new_sub;
                        }
                        None => break,
                    }
                }
                Event::Next(Some(Ok(message))) => {
                    let now = Instant::now();
                    outcome.delivered += 1;
                    check.observe(message.offset);
                    match payload::decode(&message.payload) {
                        Some(stamp) => self
                            .probe
                            .record(self.clock.since(stamp.sent_nanos, now), now),
                        None => self.probe.count(),
                    }
                }
                Event::Next(Some(Err(error))) => {
                    self.probe.error();
                    outcome.error.get_or_insert_with(|| error.to_string());
                    break;
                }
                Event::Next(None) => {
                    outcome
                        .error
                        .get_or_insert_with(|| "the subscription ended early".into());
                    break;
                }
                Event::Heads(Some(head)) => target = Some(head),
                Event::Heads(None) => break,
            }
        }
        outcome.last = check.last();
        outcome.offsets = check.tally();
        (outcome, self.channel_index, client)
    }

    /// Reconnects and resubscribes after `since`, retrying with jittered
    /// backoff (as an app would) until the deadline.
    async fn resume(
        &mut self,
        since: u64,
        deadline: Instant,
        outcome: &mut Outcome,
    ) -> Option<(Client, Subscription)> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let _permit = match &self.permits {
                Some(permits) => Some(Arc::clone(permits).acquire_owned().await.ok()?),
                None => None,
            };
            match connect_and_subscribe(&self.setup, self.index, &self.channel, Some(since)).await {
                Ok(pair) => return Some(pair),
                Err(error) => {
                    outcome.failed_attempts += 1;
                    self.live.connect_failed();
                    outcome.error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
            let jitter = backoff.mul_f64(rand::random::<f64>() * 0.5 + 0.5);
            if Instant::now() + jitter >= deadline {
                return None;
            }
            tokio::time::sleep(jitter).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

impl Figures for ReconnectReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "quiver-load reconnect-storm: {} clients over {} channels, {} msg/s",
            grouped(self.clients.into()),
            self.channels,
            self.rate
        ));
        t.row(
            "connect",
            format!(
                "{} clients in {:.2} s",
                grouped(self.clients.into()),
                self.connect_s
            ),
        )
        .row(
            "storm",
            format!(
                "all {} resumed {:.2} s after the drop ({} not resumed, {} failed attempts)",
                grouped(self.resumed),
                self.storm_resumed_s,
                grouped(self.not_resumed),
                grouped(self.failed_attempts)
            ),
        )
        .row("resume ms", percentiles(&self.resume_ms))
        .row(
            "traffic",
            format!(
                "{} published ({} errors), {} delivered",
                grouped(self.published),
                grouped(self.publish_errors),
                grouped(self.delivered)
            ),
        )
        .row("latency ms", percentiles(&self.latency))
        .row("gaps", grouped(self.gaps))
        .row("duplicates", grouped(self.duplicates))
        .row("lost", grouped(self.lost));
        if let Some(error) = &self.first_error {
            t.row("first error", error.clone());
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
