//! `persist`: how many messages per second the gateway makes durable on
//! its store, with publishers as fast as acks allow, and `persist-raw`: the
//! CQL driver's own insert rate for the same rows against the same node,
//! the baseline the gateway on the ScyllaDB backend is compared with.
//!
//! What each side does, per message:
//! - gateway: a client publish (FlatBuffers frame, random idempotency
//!   key) → session checks → the store's group commit of its channel:
//!   idempotency lookup (`SELECT ... key IN ?`), the message row (unlogged
//!   batch per partition, up to 32 KiB) and the idempotency row → ack.
//! - raw: the same two rows (`messages` and `idempotency`, the statements
//!   of `storage/src/scylla/statements.rs`, same TTLs and write
//!   timestamps) written with the scylla driver as prepared single-row
//!   INSERTs in parallel, with the same number of writers in flight
//!   (publishers × inflight) and the same payload size. No lookup, no
//!   batching, no lease: the driver's raw insert rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;

use super::chat::verdict;
use super::traffic::{publisher, unix_ms};
use crate::clients::connect_all;
use crate::common::{CommonArgs, Timeline};
use crate::live::{Kind, Live, Probe};
use crate::payload::{self, Clock, HEADER_LEN, Stamp};
use crate::progress::{Monitor, Series};
use crate::report::{Figures, Table, grouped, per_sec, percentiles};
use crate::stats::Summary;

/// Offsets per message partition, as `quiver_storage::scylla::BUCKET_SIZE`.
const BUCKET: u64 = quiver_storage::scylla::BUCKET_SIZE;
/// The gateway's idempotency window (24 h) as the records' TTL.
const IDEMPOTENCY_TTL: i32 = 24 * 60 * 60;

/// Flags of `persist` (and the writer shape of `persist-raw`).
#[derive(Debug, Clone, Args)]
pub struct PersistArgs {
    /// Publishers (raw: writers), each on its own channel.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub publishers: u32,
    /// Publishes awaiting their ack at once, per publisher.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub inflight: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
}

/// Flags of `persist-raw` beyond the writer shape.
#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    /// The CQL node, host:port (deploy/cql-node.sh start prints it).
    #[arg(long, default_value = "127.0.0.1:9042")]
    pub cql: String,
    /// Keyspace for the rows (created with Quiver's schema if missing).
    #[arg(long, default_value = "quiver_load_raw")]
    pub keyspace: String,
}

/// Every figure of a persist run, either side.
#[derive(Debug, Clone, Serialize)]
pub struct PersistReport {
    pub scenario: &'static str,
    /// `gateway` or `raw`.
    pub target: &'static str,
    pub started_unix_ms: u64,
    pub server: String,
    pub publishers: u32,
    pub inflight: u32,
    pub payload_bytes: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Durable messages (acks) per second in the window.
    pub persisted_rate: f64,
    pub acked_total: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Publish (raw: first INSERT) to ack (raw: both INSERTs done).
    pub ack_latency: Summary,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
}

impl PersistArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if self.size < HEADER_LEN {
            bail!("--size must be at least {HEADER_LEN} bytes: the timing header");
        }
        Ok(())
    }
}

/// Publishes through the gateway as fast as acks allow.
pub async fn run(common: &CommonArgs, args: &PersistArgs) -> anyhow::Result<PersistReport> {
    args.validate()?;
    let setup = common.setup().await?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "persist");
    let prefix = format!("load-persist-{}", unix_ms());
    monitor.phase("connecting publishers", None);
    let pubs = connect_all(
        args.publishers as usize,
        setup.connect_concurrency,
        |index| {
            let setup = &setup;
            let live = &live;
            async move {
                let token = setup.minter.token(&format!("load-persist-{index}"))?;
                let config = setup
                    .pool
                    .client_config(token, "quiver-load/persist")
                    .max_in_flight(args.inflight as usize);
                let client = setup.pool.connect(index, config).await?;
                live.connection(1);
                anyhow::Ok(client)
            }
        },
    )
    .await?;
    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), setup.warmup, setup.duration, setup.drain);
    live.set_timeline(timeline);
    monitor.phase("publishing", Some(setup.warmup + setup.duration));
    let mut tasks = JoinSet::new();
    for (index, client) in pubs.items.iter().enumerate() {
        let plan = publisher::Plan {
            index: index as u32,
            channel: Arc::from(format!("{prefix}-{index}").as_str()),
            rate: None,
            phase: Duration::ZERO,
            inflight: args.inflight as usize,
            size: args.size,
            clock,
            timeline,
        };
        tasks.spawn(publisher::run(
            client.clone(),
            plan,
            live.probe(Kind::Ack, index),
        ));
    }
    let mut outcome = publisher::Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        outcome.merge(joined.context("a publisher task failed")?);
    }
    monitor.phase("closing", None);
    setup.pool.close(&pubs.items).await;
    let series = monitor.finish().await;
    Ok(report(
        "gateway",
        common.server.clone(),
        common,
        args,
        timeline,
        (
            outcome.acked_in_window,
            outcome.acked,
            outcome.errors,
            outcome.first_error,
        ),
        live.ack_latency().summary(),
        started_unix_ms,
        series,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    target: &'static str,
    server: String,
    common: &CommonArgs,
    args: &PersistArgs,
    timeline: Timeline,
    (in_window, acked, errors, first_error): (u64, u64, u64, Option<String>),
    ack_latency: Summary,
    started_unix_ms: u64,
    series: Series,
) -> PersistReport {
    let window = timeline.window().as_secs_f64();
    let mut r = PersistReport {
        scenario: if target == "raw" {
            "persist-raw"
        } else {
            "persist"
        },
        target,
        started_unix_ms,
        server,
        publishers: args.publishers,
        inflight: args.inflight,
        payload_bytes: args.size,
        warmup_s: common.warmup,
        duration_s: window,
        persisted_rate: in_window as f64 / window,
        acked_total: acked,
        errors,
        first_error,
        ack_latency,
        passed: false,
        failures: Vec::new(),
        series,
    };
    if r.acked_total == 0 {
        r.failures.push("nothing was persisted".into());
    }
    if r.errors > 0 {
        r.failures.push(format!("{} writes failed", r.errors));
    }
    r.passed = r.failures.is_empty();
    r
}

/// The same rows straight through the driver.
pub async fn run_raw(
    common: &CommonArgs,
    args: &PersistArgs,
    raw: &RawArgs,
) -> anyhow::Result<PersistReport> {
    use scylla::client::session_builder::SessionBuilder;
    use scylla::statement::Consistency;

    args.validate()?;
    let (warmup, duration, drain) = common.phases()?;
    let live = Live::new();
    let monitor = Monitor::start(Arc::clone(&live), common.progress, "persist-raw");
    monitor.phase(format!("connecting to {}", raw.cql), None);
    let session = SessionBuilder::new()
        .known_node(&raw.cql)
        .build()
        .await
        .with_context(|| {
            format!(
                "cannot connect to the CQL node {}; start one with deploy/cql-node.sh start",
                raw.cql
            )
        })?;
    let config =
        quiver_storage::scylla::ScyllaConfig::new(vec![raw.cql.clone()], raw.keyspace.clone());
    // The store's own schema step, which also upgrades an older keyspace.
    quiver_storage::scylla::apply_schema(&session, &config)
        .await
        .context("applying the schema")?;
    let ks = &raw.keyspace;
    // The gateway's statements (storage/src/scylla/statements.rs), restated:
    // those are private to the store.
    let mut insert_message = session
        .prepare(format!(
            "INSERT INTO {ks}.messages (tenant, channel, bucket, seq, id, ts, sender, headers, \
             payload, idem_key, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             USING TTL ? AND TIMESTAMP ?"
        ))
        .await
        .context("cannot prepare the message INSERT")?;
    let mut insert_idem = session
        .prepare(format!(
            "INSERT INTO {ks}.idempotency (tenant, channel, key, seq, id, ts) \
             VALUES (?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
        ))
        .await
        .context("cannot prepare the idempotency INSERT")?;
    for statement in [&mut insert_message, &mut insert_idem] {
        statement.set_consistency(Consistency::LocalQuorum);
        statement.set_is_idempotent(true);
    }
    let writer = Arc::new(Writer {
        session,
        insert_message,
        insert_idem,
    });

    let clock = Clock::new();
    let started_unix_ms = unix_ms();
    let timeline = Timeline::new(Instant::now(), warmup, duration, drain);
    live.set_timeline(timeline);
    monitor.phase("inserting", Some(warmup + duration));
    let prefix = format!("raw-{}", unix_ms());
    let mut tasks = JoinSet::new();
    for index in 0..args.publishers as usize {
        let writer = Arc::clone(&writer);
        let channel = format!("{prefix}-{index}");
        let probe = live.probe(Kind::Ack, index);
        let (inflight, size) = (args.inflight as usize, args.size);
        tasks.spawn(async move {
            writer
                .run(
                    index as u32,
                    channel,
                    inflight,
                    size,
                    clock,
                    timeline,
                    probe,
                )
                .await
        });
    }
    let mut totals = (0u64, 0u64, 0u64, None::<String>);
    while let Some(joined) = tasks.join_next().await {
        let (in_window, acked, errors, first) = joined.context("a writer task failed")?;
        totals.0 += in_window;
        totals.1 += acked;
        totals.2 += errors;
        if totals.3.is_none() {
            totals.3 = first;
        }
    }
    let series = monitor.finish().await;
    Ok(report(
        "raw",
        raw.cql.clone(),
        common,
        args,
        timeline,
        totals,
        live.ack_latency().summary(),
        started_unix_ms,
        series,
    ))
}

struct Writer {
    session: scylla::client::session::Session,
    insert_message: scylla::statement::prepared::PreparedStatement,
    insert_idem: scylla::statement::prepared::PreparedStatement,
}

impl Writer {
    /// One channel's writer: `inflight` messages at once, offsets in order
    /// of assignment, until the window ends.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        index: u32,
        channel: String,
        inflight: usize,
        size: usize,
        clock: Clock,
        timeline: Timeline,
        mut probe: Probe,
    ) -> (u64, u64, u64, Option<String>) {
        use futures::StreamExt as _;
        let sender = format!("load-persist-{index}");
        let mut pending = futures::stream::FuturesUnordered::new();
        let (mut seq, mut in_window, mut acked, mut errors) = (0u64, 0u64, 0u64, 0u64);
        let mut first_error = None;
        loop {
            let now = Instant::now();
            if now < timeline.measure_until && pending.len() < inflight {
                seq += 1;
                let body = payload::encode(
                    Stamp {
                        sent_nanos: clock.nanos(now),
                        publisher: index,
                        seq,
                    },
                    size,
                );
                pending.push(self.write(&channel, &sender, seq, body, now));
                continue;
            }
            if pending.is_empty() {
                break;
            }
            let next = tokio::time::timeout_at(timeline.deadline.into(), pending.next()).await;
            match next {
                Ok(Some((sent, Ok(())))) => {
                    let now = Instant::now();
                    acked += 1;
                    probe.record(now - sent, now);
                    if timeline.measures(now) {
                        in_window += 1;
                    }
                }
                Ok(Some((_, Err(error)))) => {
                    errors += 1;
                    probe.error();
                    first_error.get_or_insert(error);
                }
                Ok(None) => break,
                Err(_) => {
                    errors += pending.len() as u64;
                    break;
                }
            }
        }
        (in_window, acked, errors, first_error)
    }

    /// The two rows of one message, written in parallel like the gateway's
    /// group write does.
    async fn write(
        &self,
        channel: &str,
        sender: &str,
        seq: u64,
        payload: bytes::Bytes,
        sent: Instant,
    ) -> (Instant, Result<(), String>) {
        let id = rand::random::<u128>().to_be_bytes();
        let key = format!("{:032x}", rand::random::<u128>());
        let ts = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
        let write_ts = ts * 1000;
        let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
        let bucket = i64::try_from((seq - 1) / BUCKET).unwrap_or(i64::MAX);
        let headers: Vec<(&str, &str)> = Vec::new();
        let message = (
            "bench",
            channel,
            bucket,
            seq_i,
            id,
            ts,
            sender,
            headers,
            payload.as_ref(),
            Some(key.as_str()),
            1i64,
            0i32,
            write_ts,
        );
        let idem = (
            "bench",
            channel,
            key.as_str(),
            seq_i,
            id.to_vec(),
            ts,
            IDEMPOTENCY_TTL,
            write_ts,
        );
        let (a, b) = tokio::join!(
            self.session.execute_unpaged(&self.insert_message, message),
            self.session.execute_unpaged(&self.insert_idem, idem),
        );
        let result = match (a, b) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        };
        (sent, result)
    }
}

impl Figures for PersistReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "quiver-load {} ({}): {} writers × {} in flight, {} B payload, against {}",
            self.scenario,
            self.target,
            self.publishers,
            self.inflight,
            self.payload_bytes,
            self.server
        ));
        t.row(
            "persisted",
            format!(
                "{} ({} in total, {} errors)",
                per_sec(self.persisted_rate),
                grouped(self.acked_total),
                grouped(self.errors)
            ),
        )
        .row("ack latency ms", percentiles(&self.ack_latency));
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
