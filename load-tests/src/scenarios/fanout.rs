//! `fanout`: one channel, N subscribers, P publishers.
//!
//! Measures what a broadcast costs the gateway: every published message is
//! delivered N times. Subscribers connect and subscribe first (bounded
//! concurrency), then publishers send for warmup + duration, then everyone
//! drains until each subscriber has the last acked offset or the drain time
//! is up. Only events inside the measurement window count toward rates and
//! latencies; the offset check covers the whole run.

mod figures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::{Client, Subscription};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::traffic::{publisher, subscriber, unix_ms};
use crate::clients::{Connected, connect_all};
use crate::common::{CommonArgs, Setup, Timeline};
use crate::live::{Kind, Live};
use crate::payload::{Clock, HEADER_LEN};
use crate::progress::Monitor;

pub use figures::{FanoutReport, Measured};

/// Flags of the fanout scenario.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Subscribers, each on its own connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subscribers: u32,
    /// Publishers, each on its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub publishers: u32,
    /// Messages per second across all publishers; 0 = as fast as acks allow.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Publishes awaiting their ack at once, per publisher.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub inflight: u32,
    /// Payload bytes per message (at least 20: the timing header).
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Channel to use; default: a fresh `load-fanout-<unix ms>`, so no
    /// earlier run's history is in the way.
    #[arg(long)]
    pub channel: Option<String>,
}

impl FanoutArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.rate.is_finite() || self.rate < 0.0 {
            bail!("--rate must be a number of messages per second, 0 or more");
        }
        if self.size < HEADER_LEN {
            bail!("--size must be at least {HEADER_LEN} bytes: the timing header");
        }
        Ok(())
    }

    /// Publisher `index`'s share of the plan.
    pub(crate) fn plan(
        &self,
        index: usize,
        channel: &Arc<str>,
        clock: Clock,
        timeline: Timeline,
    ) -> publisher::Plan {
        publisher::Plan {
            index: index as u32,
            channel: Arc::clone(channel),
            rate: (self.rate > 0.0).then(|| self.rate / f64::from(self.publishers)),
            // Publisher i starts i/P of a period late: together they send
            // evenly spaced messages at the total rate.
            phase: if self.rate > 0.0 {
                Duration::from_secs_f64(index as f64 / self.rate)
            } else {
                Duration::ZERO
            },
            inflight: self.inflight as usize,
            size: self.size,
            clock,
            timeline,
        }
    }
}

/// Runs the scenario and returns its figures; whether they pass is for the
/// caller to judge (`FanoutReport::failures`).
pub async fn run(common: &CommonArgs, args: &FanoutArgs) -> anyhow::Result<FanoutReport> {
    args.validate()?;
    let setup = common.setup().await?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "fanout");
    let channel: Arc<str> = match &args.channel {
        Some(channel) => Arc::from(channel.as_str()),
        None => Arc::from(format!("load-fanout-{}", unix_ms()).as_str()),
    };
    monitor.phase("connecting subscribers", None);
    let (subscribers, subs) = connect_subscribers(&setup, args, &channel, &live).await?;
    monitor.phase("connecting publishers", None);
    let publishers = connect_publishers(&setup, args, &live).await?;

    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), setup.warmup, setup.duration, setup.drain);
    live.set_timeline(timeline);
    monitor.phase("publishing", Some(setup.warmup + setup.duration));
    let (announce, announced) = watch::channel(None);
    let mut receiving = JoinSet::new();
    for (index, subscription) in subs.into_iter().enumerate() {
        let probe = live.probe(Kind::Delivery, index);
        receiving.spawn(subscriber::run(
            subscription,
            clock,
            timeline,
            announced.clone(),
            probe,
        ));
    }
    let mut publishing = JoinSet::new();
    for (index, client) in publishers.items.iter().enumerate() {
        let plan = args.plan(index, &channel, clock, timeline);
        publishing.spawn(publisher::run(
            client.clone(),
            plan,
            live.probe(Kind::Ack, index),
        ));
    }

    let mut published = publisher::Outcome::default();
    while let Some(outcome) = publishing.join_next().await {
        published.merge(outcome.context("a publisher task failed")?);
    }
    monitor.phase("draining", None);
    // Subscribers now know where to stop; a send error only means they all
    // finished already.
    let _ = announce.send(Some(published.max_offset));
    let mut received = subscriber::Outcome::default();
    while let Some(outcome) = receiving.join_next().await {
        let mut outcome = outcome.context("a subscriber task failed")?;
        outcome.settle(published.max_offset);
        received.merge(outcome);
    }
    let drained_at = Instant::now();

    let reconnects = subscribers
        .items
        .iter()
        .chain(&publishers.items)
        .map(Client::reconnect_count)
        .sum();
    monitor.phase("closing", None);
    setup.pool.close(&subscribers.items).await;
    setup.pool.close(&publishers.items).await;
    let series = monitor.finish().await;

    Ok(FanoutReport::new(
        common,
        args,
        &channel,
        Measured {
            target: "gateway",
            subscribers_connect_s: subscribers.elapsed.as_secs_f64(),
            subscriber_connect: subscribers.latency.summary(),
            publishers_connect_s: publishers.elapsed.as_secs_f64(),
            timeline,
            drained_after: drained_at.saturating_duration_since(timeline.measure_until),
            published,
            received,
            latency: live.delivery_latency().summary(),
            ack_latency: live.ack_latency().summary(),
            reconnects,
            started_unix_ms,
            series,
        },
    ))
}

/// Connects every subscriber and subscribes it live from the head; the
/// connect latency recorded includes the subscribe round trip.
async fn connect_subscribers(
    setup: &Setup,
    args: &FanoutArgs,
    channel: &Arc<str>,
    live: &Arc<Live>,
) -> anyhow::Result<(Connected<Client>, Vec<Subscription>)> {
    let count = args.subscribers as usize;
    eprintln!(
        "connecting {count} subscribers to {channel} ({} at once)",
        setup.connect_concurrency
    );
    let connected = connect_all(count, setup.connect_concurrency, |index| async move {
        let token = setup.minter.token(&format!("load-sub-{index}"))?;
        let config = setup.pool.client_config(token, "quiver-load/fanout-sub");
        let client = setup.pool.connect(index, config).await?;
        live.connection(1);
        let subscription = client
            .subscribe(channel, None)
            .await
            .with_context(|| format!("subscriber {index} cannot subscribe to {channel}"))?;
        Ok((client, subscription))
    })
    .await?;
    let (clients, subscriptions) = connected.items.into_iter().unzip();
    Ok((
        Connected {
            items: clients,
            latency: connected.latency,
            elapsed: connected.elapsed,
        },
        subscriptions,
    ))
}

/// Connects the publishers on the sockets after the subscribers', so they
/// do not all share the first one.
async fn connect_publishers(
    setup: &Setup,
    args: &FanoutArgs,
    live: &Arc<Live>,
) -> anyhow::Result<Connected<Client>> {
    let count = args.publishers as usize;
    let first = args.subscribers as usize;
    eprintln!("connecting {count} publishers");
    connect_all(count, setup.connect_concurrency, |index| async move {
        let token = setup.minter.token(&format!("load-pub-{index}"))?;
        let config = setup
            .pool
            .client_config(token, "quiver-load/fanout-pub")
            // The client's own cap must not be the one that binds.
            .max_in_flight(args.inflight as usize);
        let client = setup.pool.connect(first + index, config).await?;
        live.connection(1);
        Ok(client)
    })
    .await
}
