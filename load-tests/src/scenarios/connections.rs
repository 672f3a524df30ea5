//! `connections`: ramp to N concurrent, mostly idle connections at a given
//! rate, hold them, and report the handshake rate, failures, and the
//! server's memory per connection (its resident memory before the ramp and
//! at the end of the hold, from `/proc/PID/status` with `--server-pid` or
//! from `/metrics` with `--metrics`).
//!
//! Gateway connections do QUIC + TLS + Hello/Welcome (and optionally one
//! subscription); floor connections (`--target floor`) do QUIC + TLS and a
//! HELLO/WELCOME frame exchange on a control stream. Both then only send
//! keep-alives (every 25 s, the gateway's default for phones).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use quiver_client::{Client, Subscription};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::chat::verdict;
use super::traffic::unix_ms;
use crate::common::CommonArgs;
use crate::floor::FloorPool;
use crate::floor::client::Held;
use crate::live::Live;
use crate::memory::{RssSource, own_rss, watch};
use crate::progress::{Monitor, Series};
use crate::report::{Figures, Table, grouped, ms};
use crate::stats::{Latency, Summary};

/// Keep-alive of idle connections: the gateway's `keepalive_interval_ms`.
const KEEPALIVE: Duration = Duration::from_secs(25);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which server the connections go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A Quiver gateway, through quiver-client.
    Gateway,
    /// `quiver-load floor`, through raw quinn.
    Floor,
}

/// Flags of the connections scenario. The hold time is `--duration`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,
    /// New connections per second during the ramp (0 = as fast as
    /// --connect-concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    pub ramp_rate: f64,
    /// Each gateway connection also subscribes to one shared channel.
    #[arg(long)]
    pub subscribe: bool,
    /// Pid of the server process, to read its memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's metrics URL (http://HOST:PORT/metrics), to read
    /// process_resident_memory_bytes when the pid is not known.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Seconds to wait after the ramp before reading memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Gateway (quiver-client) or floor (raw quinn).
    #[arg(long, value_enum, default_value_t = Target::Gateway)]
    pub target: Target,
}

/// Every figure of a connections run.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    pub scenario: &'static str,
    pub target: Target,
    pub started_unix_ms: u64,
    pub server: String,
    pub requested: u32,
    pub connected: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub sockets: u32,
    pub subscribe: bool,
    pub ramp_rate: f64,
    pub ramp_s: f64,
    /// Successful handshakes per second over the ramp.
    pub handshake_rate: f64,
    /// Per connection: QUIC + TLS + Hello/Welcome (+ subscribe).
    pub connect_ms: Summary,
    pub hold_s: f64,
    /// Connections still up at the end of the hold.
    pub alive_at_end: u64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_ramp_bytes: Option<u64>,
    pub server_rss_end_bytes: Option<u64>,
    /// (end − before) / connected.
    pub server_bytes_per_connection: Option<f64>,
    /// The load generator's own growth per connection (client side).
    pub client_bytes_per_connection: f64,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
}

enum Conn {
    /// The client and, with --subscribe, its subscription (dropping it
    /// would unsubscribe).
    Gateway(
        Client,
        #[expect(dead_code, reason = "held only: dropping it unsubscribes")] Option<Subscription>,
    ),
    Floor(Held),
}

/// Runs the scenario.
pub async fn run(common: &CommonArgs, args: &ConnectionsArgs) -> anyhow::Result<ConnectionsReport> {
    let (_, hold, _) = common.phases()?;
    let source = RssSource::from_flags(args.server_pid, args.metrics.as_deref())?;
    let live = Live::new();
    let watcher = source.clone().map(|s| watch(s, Arc::clone(&live)));
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "connections");
    let trust = common.trust()?;
    enum Pools {
        Gateway(crate::common::Setup),
        Floor(FloorPool),
    }
    let pools = match args.target {
        Target::Gateway => Pools::Gateway(common.setup().await?),
        Target::Floor => Pools::Floor(
            FloorPool::new(
                &common.server,
                &trust,
                common.sockets as usize,
                KEEPALIVE,
                IDLE_TIMEOUT,
            )
            .await?,
        ),
    };
    let rss_before = read(&source).await;
    let own_before = own_rss();
    let channel = format!("load-conns-{}", unix_ms());
    let started_unix_ms = unix_ms();

    let count = args.connections as usize;
    monitor.phase(format!("ramping to {count} connections"), None);
    let held: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let latency = Arc::new(Mutex::new(Latency::new()));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(common.connect_concurrency as usize));
    let ramp_started = Instant::now();
    let pools = Arc::new(pools);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        if args.ramp_rate > 0.0 {
            let due = ramp_started + Duration::from_secs_f64(index as f64 / args.ramp_rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let (pools, live, held, latency, first_error) = (
            Arc::clone(&pools),
            Arc::clone(&live),
            Arc::clone(&held),
            Arc::clone(&latency),
            Arc::clone(&first_error),
        );
        let channel = channel.clone();
        let subscribe = args.subscribe;
        tasks.spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let result: anyhow::Result<Conn> = match &*pools {
                Pools::Gateway(setup) => {
                    async {
                        let token = setup.minter.token(&format!("load-conn-{index}"))?;
                        let config = setup
                            .pool
                            .client_config(token, "quiver-load/connections")
                            .keepalive(KEEPALIVE)
                            .idle_timeout(IDLE_TIMEOUT);
                        let client = setup.pool.connect(index, config).await?;
                        let subscription = if subscribe {
                            Some(client.subscribe(&channel, None).await?)
                        } else {
                            None
                        };
                        Ok(Conn::Gateway(client, subscription))
                    }
                    .await
                }
                Pools::Floor(pool) => pool.hello(index).await.map(Conn::Floor),
            };
            match result {
                Ok(conn) => {
                    lock(&latency).record(t0.elapsed());
                    lock(&held).push(conn);
                    live.connection(1);
                }
                Err(error) => {
                    live.connect_failed();
                    lock(&first_error).get_or_insert_with(|| format!("{error:#}"));
                }
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let ramp_s = ramp_started.elapsed().as_secs_f64();
    let connected = lock(&held).len() as u64;
    let failed = live.counters().connect_failures;

    monitor.phase("settling", Some(Duration::from_secs_f64(args.settle)));
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let rss_after_ramp = read(&source).await;
    monitor.phase(format!("holding {connected} connections"), Some(hold));
    tokio::time::sleep(hold).await;
    let rss_end = read(&source).await;
    let own_end = own_rss();
    let conns = std::mem::take(&mut *lock(&held));
    let alive = conns
        .iter()
        .filter(|c| match c {
            Conn::Gateway(client, _) => client.is_connected(),
            Conn::Floor(held) => held.connection.close_reason().is_none(),
        })
        .count() as u64;

    monitor.phase("closing", None);
    let mut clients = Vec::new();
    let mut floor = Vec::new();
    for conn in conns {
        match conn {
            Conn::Gateway(client, _) => clients.push(client),
            Conn::Floor(held) => floor.push(held),
        }
    }
    match &*pools {
        Pools::Gateway(setup) => setup.pool.close(&clients).await,
        Pools::Floor(pool) => pool.close(floor.iter().map(|h| h.connection.clone())).await,
    }
    drop(floor);
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    let series = monitor.finish().await;

    let per = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
        _ => None,
    };
    let mut report = ConnectionsReport {
        scenario: "connections",
        target: args.target,
        started_unix_ms,
        server: common.server.clone(),
        requested: args.connections,
        connected,
        failed,
        first_error: lock(&first_error).clone(),
        sockets: common.sockets,
        subscribe: args.subscribe,
        ramp_rate: args.ramp_rate,
        ramp_s,
        handshake_rate: connected as f64 / ramp_s.max(1e-9),
        connect_ms: lock(&latency).summary(),
        hold_s: hold.as_secs_f64(),
        alive_at_end: alive,
        server_rss_before_bytes: rss_before,
        server_rss_after_ramp_bytes: rss_after_ramp,
        server_rss_end_bytes: rss_end,
        server_bytes_per_connection: per(rss_before, rss_end),
        client_bytes_per_connection: (own_end as f64 - own_before as f64) / connected.max(1) as f64,
        passed: false,
        failures: Vec::new(),
        series,
    };
    if report.failed > 0 {
        report
            .failures
            .push(format!("{} connections failed", report.failed));
    }
    if report.alive_at_end < report.connected {
        report.failures.push(format!(
            "{} connections dropped during the hold",
            report.connected - report.alive_at_end
        ));
    }
    report.passed = report.failures.is_empty() && report.connected > 0;
    Ok(report)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn read(source: &Option<RssSource>) -> Option<u64> {
    match source {
        Some(source) => match source.read().await {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                eprintln!("warning: cannot read the server's memory: {error:#}");
                None
            }
        },
        None => None,
    }
}

/// Bytes as KiB with one decimal.
pub fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

impl Figures for ConnectionsReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let target = match self.target {
            Target::Gateway => "gateway",
            Target::Floor => "floor",
        };
        let mut t = Table::new(format!(
            "quiver-load connections ({target}): {} requested over {} sockets{}",
            grouped(self.requested.into()),
            self.sockets,
            if self.subscribe {
                ", one subscription each"
            } else {
                ""
            }
        ));
        t.row(
            "ramp",
            format!(
                "{} connected in {:.1} s ({} handshakes/s), {} failed",
                grouped(self.connected),
                self.ramp_s,
                grouped(self.handshake_rate.round() as u64),
                grouped(self.failed)
            ),
        )
        .row(
            "connect ms",
            format!(
                "p50 {}  p99 {}  max {}",
                ms(self.connect_ms.p50_ms),
                ms(self.connect_ms.p99_ms),
                ms(self.connect_ms.max_ms)
            ),
        )
        .row(
            "hold",
            format!(
                "{:.0} s, {} alive at the end",
                self.hold_s,
                grouped(self.alive_at_end)
            ),
        );
        let mib =
            |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
        t.row(
            "server RSS",
            format!(
                "{} before, {} after the ramp, {} at the end",
                mib(self.server_rss_before_bytes),
                mib(self.server_rss_after_ramp_bytes),
                mib(self.server_rss_end_bytes)
            ),
        )
        .row(
            "server memory/conn",
            self.server_bytes_per_connection
                .map_or("- (pass --server-pid or --metrics)".into(), kib),
        )
        .row("client memory/conn", kib(self.client_bytes_per_connection));
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
