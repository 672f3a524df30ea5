//! The floor: a bare-quinn server doing only the transport part of the
//! gateway's work, and thin raw-quinn clients for it, so benchmarks can say
//! how far the gateway is from what QUIC itself costs on the same machine.
//!
//! - [`frame`]: length-prefixed frames (the whole floor protocol);
//! - [`tls`]: the same rustls/quinn settings as the gateway;
//! - [`server`]: `quiver-load floor`;
//! - [`client`]: the thin clients; [`fanout`] runs the fanout scenario
//!   with them and reports the same figures as the gateway run.

pub mod client;
pub mod frame;
pub mod server;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clients::connect_all;
use crate::common::{CommonArgs, Timeline};
use crate::live::{Kind, Live};
use crate::payload::Clock;
use crate::progress::Monitor;
use crate::scenarios::fanout::{FanoutArgs, FanoutReport, Measured};
use crate::scenarios::traffic::{publisher, subscriber, unix_ms};

/// Keep-alive and idle timeout of floor clients in fan-out runs (those of
/// the gateway clients in `clients.rs`).
const KEEPALIVE: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The fanout scenario against the floor: the same subscribers,
/// publishers, schedule, payloads and checks, over raw quinn.
pub async fn fanout(common: &CommonArgs, args: &FanoutArgs) -> anyhow::Result<FanoutReport> {
    args.validate()?;
    let (warmup, duration, drain) = common.phases()?;
    let trust = common.trust()?;
    let pool = FloorPool::new(
        &common.server,
        &trust,
        common.sockets as usize,
        KEEPALIVE,
        IDLE_TIMEOUT,
    )
    .await?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "floor fanout");
    let concurrency = common.connect_concurrency as usize;
    monitor.phase("connecting subscribers", None);
    let subs = connect_all(args.subscribers as usize, concurrency, |index| {
        let pool = &pool;
        let live = &live;
        async move {
            let sub = client::subscribe(pool, index).await?;
            live.connection(1);
            anyhow::Ok(sub)
        }
    })
    .await?;
    monitor.phase("connecting publishers", None);
    let first = args.subscribers as usize;
    let pubs = connect_all(args.publishers as usize, concurrency, |index| {
        let pool = &pool;
        let live = &live;
        async move {
            let connection = pool.connect(first + index).await?;
            live.connection(1);
            anyhow::Ok(connection)
        }
    })
    .await?;

    let channel: Arc<str> = Arc::from("floor");
    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), warmup, duration, drain);
    live.set_timeline(timeline);
    monitor.phase("publishing", Some(warmup + duration));
    let (announce, announced) = watch::channel(None);
    let mut connections = Vec::new();
    let mut receiving = JoinSet::new();
    for (index, sub) in subs.items.into_iter().enumerate() {
        connections.push(sub.connection.clone());
        let probe = live.probe(Kind::Delivery, index);
        receiving.spawn(client::read_subscription(
            sub,
            clock,
            timeline,
            announced.clone(),
            probe,
        ));
    }
    let mut publishing = JoinSet::new();
    for (index, connection) in pubs.items.iter().enumerate() {
        connections.push(connection.clone());
        let plan = args.plan(index, &channel, clock, timeline);
        publishing.spawn(client::publish(
            connection.clone(),
            plan,
            live.probe(Kind::Ack, index),
        ));
    }
    let mut published = publisher::Outcome::default();
    while let Some(outcome) = publishing.join_next().await {
        published.merge(outcome.context("a floor publisher task failed")?);
    }
    monitor.phase("draining", None);
    let _ = announce.send(Some(published.max_offset));
    let mut received = subscriber::Outcome::default();
    while let Some(outcome) = receiving.join_next().await {
        let mut outcome = outcome.context("a floor subscriber task failed")?;
        outcome.settle(published.max_offset);
        received.merge(outcome);
    }
    let drained_at = Instant::now();
    monitor.phase("closing", None);
    pool.close(connections).await;
    let series = monitor.finish().await;
    Ok(FanoutReport::new(
        common,
        args,
        &channel,
        Measured {
            target: "floor",
            subscribers_connect_s: subs.elapsed.as_secs_f64(),
            subscriber_connect: subs.latency.summary(),
            publishers_connect_s: pubs.elapsed.as_secs_f64(),
            timeline,
            drained_after: drained_at.saturating_duration_since(timeline.measure_until),
            published,
            received,
            latency: live.delivery_latency().summary(),
            ack_latency: live.ack_latency().summary(),
            reconnects: 0,
            started_unix_ms,
            series,
        },
    ))
}

pub use client::FloorPool;
