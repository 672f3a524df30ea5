//! `chat`: R rooms of M members. Every member holds one connection,
//! subscribes to its room and publishes into it at a given rate, like a
//! busy group chat: each message is delivered to the M members of its room
//! (the sender included).
//!
//! Measures publish→deliver latency from the send time carried in each
//! payload, deliveries/s, acks and errors, and checks every member's
//! offsets for gaps and duplicates (must be zero).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::{Client, Subscription};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::traffic::{publisher, subscriber, unix_ms};
use crate::clients::connect_all;
use crate::common::{CommonArgs, Timeline};
use crate::live::{Kind, Live};
use crate::payload::{Clock, HEADER_LEN};
use crate::progress::{Monitor, Series};
use crate::report::{Figures, Table, grouped, per_sec, percentiles};
use crate::stats::Summary;

/// Flags of the chat scenario.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Rooms (channels).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rooms: u32,
    /// Members per room, each on its own connection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub members: u32,
    /// Messages per second each member publishes (0 = as fast as acks allow).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Publishes awaiting their ack at once, per member.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub inflight: u32,
    /// Payload bytes per message (at least 20: the timing header).
    #[arg(long, default_value_t = 100)]
    pub size: usize,
}

/// Every figure of a chat run.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReport {
    pub scenario: &'static str,
    pub started_unix_ms: u64,
    pub server: String,
    pub rooms: u32,
    pub members_per_room: u32,
    pub connections: u64,
    pub rate_per_member: f64,
    pub payload_bytes: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub connect_s: f64,
    /// Per member: connect plus subscribe.
    pub connect_ms: Summary,
    /// Publishes asked for per second over all members (0 = unpaced).
    pub target_publish_rate: f64,
    /// Acked publishes per second in the window.
    pub publish_rate: f64,
    pub acked_total: u64,
    pub publish_errors: u64,
    pub first_publish_error: Option<String>,
    pub unsent: u64,
    /// Deliveries per second in the window over all members.
    pub delivery_rate: f64,
    pub expected_delivery_rate: f64,
    pub delivered_total: u64,
    pub latency: Summary,
    pub ack_latency: Summary,
    pub gaps: u64,
    pub duplicates: u64,
    pub undelivered: u64,
    pub subscriptions_failed: u64,
    pub first_subscription_error: Option<String>,
    pub reconnects: u64,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
}

impl ChatArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if !self.rate.is_finite() || self.rate < 0.0 {
            bail!("--rate must be messages per second per member, 0 or more");
        }
        if self.size < HEADER_LEN {
            bail!("--size must be at least {HEADER_LEN} bytes: the timing header");
        }
        Ok(())
    }
}

/// Runs the scenario.
pub async fn run(common: &CommonArgs, args: &ChatArgs) -> anyhow::Result<ChatReport> {
    args.validate()?;
    let setup = common.setup().await?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "chat");
    let prefix = format!("load-chat-{}", unix_ms());
    let rooms: Vec<Arc<str>> = (0..args.rooms)
        .map(|r| Arc::from(format!("{prefix}-room-{r}").as_str()))
        .collect();
    let members = args.members as usize;
    let count = rooms.len() * members;
    monitor.phase(format!("connecting {count} members"), None);
    let connected = connect_all(count, setup.connect_concurrency, |index| {
        let setup = &setup;
        let live = &live;
        let room = Arc::clone(&rooms[index / members]);
        async move {
            let token = setup.minter.token(&format!("load-chat-{index}"))?;
            let config = setup
                .pool
                .client_config(token, "quiver-load/chat")
                .max_in_flight(args.inflight as usize + 8);
            let client = setup.pool.connect(index, config).await?;
            live.connection(1);
            let subscription = client
                .subscribe(&room, None)
                .await
                .with_context(|| format!("member {index} cannot subscribe to {room}"))?;
            anyhow::Ok((client, subscription))
        }
    })
    .await?;
    let connect_s = connected.elapsed.as_secs_f64();
    let connect_ms = connected.latency.summary();
    let (clients, subscriptions): (Vec<Client>, Vec<Subscription>) =
        connected.items.into_iter().unzip();

    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), setup.warmup, setup.duration, setup.drain);
    live.set_timeline(timeline);
    monitor.phase("chatting", Some(setup.warmup + setup.duration));
    let announcers: Vec<_> = rooms.iter().map(|_| watch::channel(None)).collect();
    let mut receiving = JoinSet::new();
    for (index, subscription) in subscriptions.into_iter().enumerate() {
        let room = index / members;
        let announced = announcers[room].1.clone();
        let probe = live.probe(Kind::Delivery, index);
        receiving.spawn(async move {
            let outcome = subscriber::run(subscription, clock, timeline, announced, probe).await;
            (room, outcome)
        });
    }
    let mut publishing = JoinSet::new();
    for (index, client) in clients.iter().enumerate() {
        let room = index / members;
        let rate = (args.rate > 0.0).then_some(args.rate);
        let plan = publisher::Plan {
            index: index as u32,
            channel: Arc::clone(&rooms[room]),
            rate,
            // Spread members evenly over one period, so a room does not
            // publish in bursts of M.
            phase: rate.map_or(Duration::ZERO, |r| {
                Duration::from_secs_f64((index % members) as f64 / members as f64 / r)
            }),
            inflight: args.inflight as usize,
            size: args.size,
            clock,
            timeline,
        };
        let probe = live.probe(Kind::Ack, index);
        let client = client.clone();
        publishing.spawn(async move { (room, publisher::run(client, plan, probe).await) });
    }
    let mut published = publisher::Outcome::default();
    let mut heads = vec![0u64; rooms.len()];
    while let Some(joined) = publishing.join_next().await {
        let (room, outcome) = joined.context("a publisher task failed")?;
        heads[room] = heads[room].max(outcome.max_offset);
        published.merge(outcome);
    }
    monitor.phase("draining", None);
    for (room, (announce, _)) in announcers.iter().enumerate() {
        let _ = announce.send(Some(heads[room]));
    }
    let mut received = subscriber::Outcome::default();
    while let Some(joined) = receiving.join_next().await {
        let (room, mut outcome) = joined.context("a member task failed")?;
        outcome.settle(heads[room]);
        received.merge(outcome);
    }
    let reconnects = clients.iter().map(Client::reconnect_count).sum();
    monitor.phase("closing", None);
    setup.pool.close(&clients).await;
    let series = monitor.finish().await;

    let window = timeline.window().as_secs_f64();
    let target_publish_rate = args.rate * count as f64;
    let mut report = ChatReport {
        scenario: "chat",
        started_unix_ms,
        server: common.server.clone(),
        rooms: args.rooms,
        members_per_room: args.members,
        connections: count as u64,
        rate_per_member: args.rate,
        payload_bytes: args.size,
        warmup_s: common.warmup,
        duration_s: window,
        connect_s,
        connect_ms,
        target_publish_rate,
        publish_rate: published.acked_in_window as f64 / window,
        acked_total: published.acked,
        publish_errors: published.errors,
        first_publish_error: published.first_error,
        unsent: published.unsent,
        delivery_rate: received.delivered_in_window as f64 / window,
        expected_delivery_rate: target_publish_rate * f64::from(args.members),
        delivered_total: received.delivered,
        latency: live.delivery_latency().summary(),
        ack_latency: live.ack_latency().summary(),
        gaps: received.offsets.gaps,
        duplicates: received.offsets.duplicates,
        undelivered: received.undelivered,
        subscriptions_failed: received.failed,
        first_subscription_error: received.error,
        reconnects,
        passed: false,
        failures: Vec::new(),
        series,
    };
    report.failures = judge(&report);
    report.passed = report.failures.is_empty();
    Ok(report)
}

fn judge(r: &ChatReport) -> Vec<String> {
    let mut failures = Vec::new();
    if r.gaps > 0 {
        failures.push(format!("{} offsets skipped (gaps)", r.gaps));
    }
    if r.duplicates > 0 {
        failures.push(format!("{} duplicate deliveries", r.duplicates));
    }
    if r.undelivered > 0 {
        failures.push(format!(
            "{} acked deliveries missing after the drain",
            r.undelivered
        ));
    }
    if r.delivered_total == 0 {
        failures.push("no message was delivered".into());
    }
    failures
}

impl Figures for ChatReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "quiver-load chat: {} rooms × {} members ({} connections), {} msg/s per member, {} B",
            self.rooms,
            self.members_per_room,
            grouped(self.connections),
            self.rate_per_member,
            self.payload_bytes
        ));
        t.row(
            "connect",
            format!(
                "{} members in {:.2} s",
                grouped(self.connections),
                self.connect_s
            ),
        )
        .row(
            "publish rate",
            format!(
                "{} acked (target {})",
                per_sec(self.publish_rate),
                per_sec(self.target_publish_rate)
            ),
        )
        .row(
            "deliveries",
            format!(
                "{} (expected {})",
                per_sec(self.delivery_rate),
                per_sec(self.expected_delivery_rate)
            ),
        )
        .row("latency ms", percentiles(&self.latency))
        .row("ack latency ms", percentiles(&self.ack_latency))
        .row("gaps", grouped(self.gaps))
        .row("duplicates", grouped(self.duplicates))
        .row("undelivered", grouped(self.undelivered))
        .row(
            "errors",
            format!(
                "{} publish, {} subscriptions ended, {} reconnects, {} unsent",
                grouped(self.publish_errors),
                self.subscriptions_failed,
                self.reconnects,
                grouped(self.unsent)
            ),
        );
        if let Some(e) = &self.first_publish_error {
            t.row("first publish error", e.clone());
        }
        if let Some(e) = &self.first_subscription_error {
            t.row("first subscription error", e.clone());
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

/// `PASS` or `FAIL: why`.
pub fn verdict(passed: bool, failures: &[String]) -> String {
    if passed {
        "PASS".into()
    } else {
        format!("FAIL: {}", failures.join("; "))
    }
}
