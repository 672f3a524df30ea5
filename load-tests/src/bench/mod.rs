//! `quiver-load bench SCENARIO`: starts a gateway (and the floor, or the
//! raw-driver baseline), runs the same scenario against each in one run,
//! prints the figures and their ratio, and writes JSON and an HTML report.
//!
//! - `fanout`: gateway vs floor, ratio of deliveries/s;
//! - `connections`: gateway vs floor, ratio of server memory per idle
//!   connection (read from /proc/PID/status of each server);
//! - `persist`: gateway on `--store scylla://` vs the driver's raw inserts
//!   of the same rows, ratio of messages persisted per second;
//! - `chat`, `reconnect-storm`: the gateway only (no floor equivalent);
//! - `tracking`: the gateway only, started with `[limits]
//!   track_rate_per_sec` = `--track-limit`, its metrics read for the
//!   positions it dropped.
//!
//! `bench-all` (`all.rs`) runs the set BENCHMARKS.md reports.

pub mod all;
pub mod servers;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::common::CommonArgs;
use crate::html::Page;
use crate::machine::Machine;
use crate::memory::cpu_seconds;
use crate::report::{Figures, command_line, section, write_json};
use crate::scenarios::chat::{self, ChatArgs};
use crate::scenarios::connections::{self, ConnectionsArgs, Target};
use crate::scenarios::fanout::{self, FanoutArgs};
use crate::scenarios::persist::{self, PersistArgs, RawArgs};
use crate::scenarios::reconnect::{self, ReconnectArgs};
use crate::scenarios::tracking::{self, TrackingArgs};
use servers::{Floor, Gateway, TENANT};

/// Flags every bench takes.
#[derive(Debug, Clone, Args)]
pub struct BenchOpts {
    /// The gateway binary; default: `quiver` next to this binary.
    #[arg(long)]
    pub quiver: Option<PathBuf>,
    /// Folder for the JSON, the HTML report and the server logs.
    #[arg(long, default_value = "load-tests/results/bench")]
    pub out: PathBuf,
    /// Skip the floor / raw baseline.
    #[arg(long)]
    pub no_baseline: bool,
}

/// `bench` subcommands. The common flags' --server, --ca, --tenant and
/// --secret are set by the bench to the servers it starts.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    Fanout {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: FanoutArgs,
    },
    Connections {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: ConnectionsArgs,
    },
    Chat {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: ChatArgs,
    },
    ReconnectStorm {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: ReconnectArgs,
    },
    Tracking {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: TrackingArgs,
    },
    Persist {
        #[command(flatten)]
        opts: BenchOpts,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: PersistArgs,
        /// The CQL node both sides write to (deploy/cql-node.sh start).
        #[arg(long, default_value = "127.0.0.1:9042")]
        cql: String,
    },
}

/// CPU seconds a run cost: the server under test and this load generator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuCost {
    /// `None` when the server is not a local process we started.
    pub server_s: Option<f64>,
    pub load_generator_s: f64,
}

/// Runs `work` and measures the CPU it cost `server_pid` and this process.
async fn costed<T>(server_pid: Option<u32>, work: impl Future<Output = T>) -> (T, CpuCost) {
    let server = |pid: Option<u32>| pid.and_then(|p| cpu_seconds(&p.to_string()));
    let (server_before, own_before) = (server(server_pid), cpu_seconds("self").unwrap_or(0.0));
    let value = work.await;
    let server_s = match (server_before, server(server_pid)) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let load_generator_s = cpu_seconds("self").unwrap_or(0.0) - own_before;
    (
        value,
        CpuCost {
            server_s,
            load_generator_s,
        },
    )
}

/// The bench's JSON: both sides, their ratio, where and how it ran.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub bench: String,
    pub command: String,
    pub machine: Machine,
    /// What the ratio divides, in words.
    pub ratio_of: Option<String>,
    /// gateway ÷ baseline.
    pub ratio: Option<f64>,
    pub gateway: serde_json::Value,
    pub baseline: Option<serde_json::Value>,
    /// CPU the gateway run cost (server and load generator).
    pub gateway_cpu: CpuCost,
    /// CPU the baseline run cost (the floor; `server_s` is `None` for the
    /// raw driver, whose server is the database).
    pub baseline_cpu: Option<CpuCost>,
    pub passed: bool,
    pub gateway_config: String,
}

fn quiver_binary(opts: &BenchOpts) -> anyhow::Result<PathBuf> {
    if let Some(path) = &opts.quiver {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("cannot find this binary")?;
    Ok(exe.with_file_name("quiver"))
}

/// Points the common flags at a started gateway.
fn at_gateway(common: &CommonArgs, gateway: &Gateway) -> CommonArgs {
    let mut common = common.clone();
    common.server = gateway.server.clone();
    common.ca = Some(gateway.cert.clone());
    common.insecure = false;
    common.data_dir = None;
    common.tenant = Some(TENANT.into());
    common.secret = Some(gateway.secret.clone());
    common.json = None;
    common.report = None;
    common
}

/// Runs one bench; `Ok(false)` when a run failed its checks.
pub async fn run(command: BenchCommand) -> anyhow::Result<bool> {
    match command {
        BenchCommand::Fanout { opts, common, args } => {
            let gateway =
                Gateway::start(&quiver_binary(&opts)?, None, &opts.out.join("gateway.log")).await?;
            let on_gateway = at_gateway(&common, &gateway);
            let config = gateway.config.clone();
            let (cert, key) = (gateway.cert.clone(), gateway.key.clone());
            let (result, gateway_cpu) =
                costed(Some(gateway.pid), fanout::run(&on_gateway, &args)).await;
            // The floor must not keep the gateway's files alive: copy them.
            let keep = tempfile::tempdir()?;
            let (cert_copy, key_copy) = (keep.path().join("cert.pem"), keep.path().join("key.pem"));
            std::fs::copy(&cert, &cert_copy)?;
            std::fs::copy(&key, &key_copy)?;
            gateway.stop().await;
            let gw = result?;
            let floor = if opts.no_baseline {
                None
            } else {
                let floor = Floor::start(&cert_copy, &key_copy).await?;
                let mut on_floor = on_gateway.clone();
                on_floor.server = floor.server.clone();
                on_floor.ca = Some(cert_copy.clone());
                let (result, cpu) =
                    costed(Some(floor.pid), crate::floor::fanout(&on_floor, &args)).await;
                floor.stop().await;
                Some((result?, cpu))
            };
            let ratio = floor
                .as_ref()
                .map(|(f, _)| gw.delivery_rate / f.delivery_rate.max(1e-9));
            finish(
                &opts,
                "fanout",
                "deliveries/s, gateway ÷ floor",
                ratio,
                (&gw, gateway_cpu),
                floor.as_ref().map(|(f, c)| (f, *c)),
                config,
            )
        }
        BenchCommand::Connections {
            opts,
            common,
            mut args,
        } => {
            let gateway =
                Gateway::start(&quiver_binary(&opts)?, None, &opts.out.join("gateway.log")).await?;
            let on_gateway = at_gateway(&common, &gateway);
            let config = gateway.config.clone();
            let keep = tempfile::tempdir()?;
            let (cert_copy, key_copy) = (keep.path().join("cert.pem"), keep.path().join("key.pem"));
            std::fs::copy(&gateway.cert, &cert_copy)?;
            std::fs::copy(&gateway.key, &key_copy)?;
            args.server_pid = Some(gateway.pid);
            args.target = Target::Gateway;
            let (result, gateway_cpu) =
                costed(Some(gateway.pid), connections::run(&on_gateway, &args)).await;
            gateway.stop().await;
            let gw = result?;
            let floor = if opts.no_baseline {
                None
            } else {
                // Let the kernel and the generator settle between runs.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let floor = Floor::start(&cert_copy, &key_copy).await?;
                let mut on_floor = on_gateway.clone();
                on_floor.server = floor.server.clone();
                on_floor.ca = Some(cert_copy.clone());
                args.server_pid = Some(floor.pid);
                args.target = Target::Floor;
                args.subscribe = false;
                let (result, cpu) =
                    costed(Some(floor.pid), connections::run(&on_floor, &args)).await;
                floor.stop().await;
                Some((result?, cpu))
            };
            let ratio = match (&floor, gw.server_bytes_per_connection) {
                (Some((f, _)), Some(g)) => f.server_bytes_per_connection.map(|f| g / f.max(1.0)),
                _ => None,
            };
            finish(
                &opts,
                "connections",
                "server memory per connection, gateway ÷ floor",
                ratio,
                (&gw, gateway_cpu),
                floor.as_ref().map(|(f, c)| (f, *c)),
                config,
            )
        }
        BenchCommand::Chat { opts, common, args } => {
            let gateway =
                Gateway::start(&quiver_binary(&opts)?, None, &opts.out.join("gateway.log")).await?;
            let config = gateway.config.clone();
            let (result, cpu) = costed(
                Some(gateway.pid),
                chat::run(&at_gateway(&common, &gateway), &args),
            )
            .await;
            gateway.stop().await;
            finish::<chat::ChatReport>(&opts, "chat", "", None, (&result?, cpu), None, config)
        }
        BenchCommand::ReconnectStorm { opts, common, args } => {
            let gateway =
                Gateway::start(&quiver_binary(&opts)?, None, &opts.out.join("gateway.log")).await?;
            let config = gateway.config.clone();
            let (result, cpu) = costed(
                Some(gateway.pid),
                reconnect::run(&at_gateway(&common, &gateway), &args),
            )
            .await;
            gateway.stop().await;
            finish::<reconnect::ReconnectReport>(
                &opts,
                "reconnect-storm",
                "",
                None,
                (&result?, cpu),
                None,
                config,
            )
        }
        BenchCommand::Tracking {
            opts,
            common,
            mut args,
        } => {
            let gateway = Gateway::start_with(
                &quiver_binary(&opts)?,
                None,
                &[("track_rate_per_sec", u64::from(args.track_limit))],
                &opts.out.join("gateway.log"),
            )
            .await?;
            let config = gateway.config.clone();
            args.metrics = Some(format!("http://{}/metrics", gateway.ops));
            let (result, cpu) = costed(
                Some(gateway.pid),
                tracking::run(&at_gateway(&common, &gateway), &args),
            )
            .await;
            gateway.stop().await;
            finish::<tracking::TrackingReport>(
                &opts,
                "tracking",
                "",
                None,
                (&result?, cpu),
                None,
                config,
            )
        }
        BenchCommand::Persist {
            opts,
            common,
            args,
            cql,
        } => {
            let keyspace = format!("quiver_bench_{}", crate::scenarios::traffic::unix_ms());
            let store = format!("scylla://{cql}/{keyspace}");
            let gateway = Gateway::start(
                &quiver_binary(&opts)?,
                Some(&store),
                &opts.out.join("gateway.log"),
            )
            .await?;
            let config = gateway.config.clone();
            let (result, gateway_cpu) = costed(
                Some(gateway.pid),
                persist::run(&at_gateway(&common, &gateway), &args),
            )
            .await;
            gateway.stop().await;
            let gw = result?;
            let raw = if opts.no_baseline {
                None
            } else {
                let raw = RawArgs { cql, keyspace };
                let (result, cpu) = costed(None, persist::run_raw(&common, &args, &raw)).await;
                Some((result?, cpu))
            };
            let ratio = raw
                .as_ref()
                .map(|(r, _)| gw.persisted_rate / r.persisted_rate.max(1e-9));
            finish(
                &opts,
                "persist",
                "messages persisted/s, gateway ÷ raw driver",
                ratio,
                (&gw, gateway_cpu),
                raw.as_ref().map(|(r, c)| (r, *c)),
                config,
            )
        }
    }
}

/// Prints both tables and the ratio; writes bench.json and bench.html.
fn finish<F: Figures>(
    opts: &BenchOpts,
    bench: &str,
    ratio_of: &str,
    ratio: Option<f64>,
    (gateway, gateway_cpu): (&F, CpuCost),
    baseline: Option<(&F, CpuCost)>,
    gateway_config: String,
) -> anyhow::Result<bool> {
    let baseline_cpu = baseline.map(|(_, c)| c);
    let baseline = baseline.map(|(b, _)| b);
    print!("{}", gateway.table().render());
    if let Some(baseline) = baseline {
        print!("{}", baseline.table().render());
    }
    let cpu = |c: &CpuCost| {
        format!(
            "server {} CPU s, load generator {:.1} CPU s",
            c.server_s.map_or("-".into(), |s| format!("{s:.1}")),
            c.load_generator_s
        )
    };
    println!("cpu: gateway run: {}", cpu(&gateway_cpu));
    if let Some(c) = &baseline_cpu {
        println!("cpu: baseline run: {}", cpu(c));
    }
    if let Some(ratio) = ratio {
        println!("ratio ({ratio_of}): {ratio:.3}");
    }
    let passed = gateway.passed() && baseline.is_none_or(Figures::passed);
    let report = BenchReport {
        bench: bench.to_owned(),
        command: command_line(),
        machine: Machine::now(),
        ratio_of: (!ratio_of.is_empty()).then(|| ratio_of.to_owned()),
        ratio,
        gateway: serde_json::to_value(gateway)?,
        baseline: baseline.map(serde_json::to_value).transpose()?,
        gateway_cpu,
        baseline_cpu,
        passed,
        gateway_config,
    };
    write_outputs(&opts.out, bench, &report, gateway, baseline)?;
    Ok(passed)
}

fn write_outputs<F: Figures>(
    out: &Path,
    bench: &str,
    report: &BenchReport,
    gateway: &F,
    baseline: Option<&F>,
) -> anyhow::Result<()> {
    let json = out.join(format!("{bench}.json"));
    write_json(&json, report)?;
    let mut sections = vec![section("gateway", gateway)];
    if let Some(baseline) = baseline {
        sections.push(section(
            if bench == "persist" {
                "raw driver"
            } else {
                "floor"
            },
            baseline,
        ));
    }
    if let (Some(ratio), Some(of)) = (report.ratio, &report.ratio_of) {
        sections.insert(
            0,
            crate::html::Section {
                heading: "ratio".into(),
                rows: vec![(of.clone(), format!("{ratio:.3}"))],
                charts: Vec::new(),
            },
        );
    }
    let page = Page {
        title: format!("quiver-load bench {bench}"),
        command: report.command.clone(),
        machine: report.machine.clone(),
        sections,
    };
    let html = out.join(format!("{bench}.html"));
    page.write(&html)?;
    eprintln!("wrote {} and {}", json.display(), html.display());
    Ok(())
}
