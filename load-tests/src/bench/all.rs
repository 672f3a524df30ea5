//! `quiver-load bench-all`: runs every benchmark BENCHMARKS.md reports,
//! each as its own `quiver-load bench ...` process (so a 100,000-connection
//! run's memory is gone before the next starts), then writes the file from
//! their JSON: machine, date, load average, the exact commands, results.
//! Regenerate the file with it rather than editing it by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::{Machine, load_1m, load_average};

/// Flags of bench-all.
#[derive(Debug, Clone, Args)]
pub struct BenchAllArgs {
    /// The markdown file to write.
    #[arg(long, default_value = "load-tests/BENCHMARKS.md")]
    pub output: PathBuf,
    /// Folder for every run's JSON, HTML report and logs.
    #[arg(long, default_value = "load-tests/results/bench-all")]
    pub results: PathBuf,
    /// The gateway binary; default: `quiver` next to this binary.
    #[arg(long)]
    pub quiver: Option<PathBuf>,
    /// A CQL node for the persist bench (deploy/cql-node.sh start); the
    /// persist bench is skipped without it.
    #[arg(long)]
    pub cql: Option<String>,
    /// Largest idle-connection count to try (the issue asks for 100,000).
    #[arg(long, default_value_t = 100_000)]
    pub max_connections: u32,
    /// Wait up to this many seconds for the 1-minute load average to drop
    /// under 1.0 before starting (the machine may be shared).
    #[arg(long, default_value_t = 120)]
    pub wait_quiet: u64,
    /// Skip load-tests/bench-core.sh.
    #[arg(long)]
    pub no_core: bool,
    /// Run nothing: rewrite the file from the results of the last run
    /// (RESULTS/bench-all.json and each step's JSON).
    #[arg(long)]
    pub render_only: bool,
}

/// (watchers, channels) of the tracking runs, 10,000 entities each. With
/// 100 channels every position reaches 10 watchers of 1,000 (each watcher
/// sees 100 entities); with 1,000 channels it reaches one (each sees 10).
/// The runs with 1,000 watchers are the aim.
const TRACKING_RUNS: [(u32, u32); 4] = [(100, 100), (300, 100), (1000, 1000), (1000, 100)];

/// The step name of a tracking run; 1,000 watchers on 100 channels is
/// plain `tracking`.
fn tracking_step((watchers, channels): (u32, u32)) -> String {
    match (watchers, channels) {
        (1000, 100) => "tracking".into(),
        (w, 100) => format!("tracking-{w}"),
        (w, c) => format!("tracking-{w}-{c}ch"),
    }
}

/// What a run leaves beside the steps' JSON, so the file can be rendered
/// again (`--render-only`) without running anything.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    machine_before: Machine,
    machine_after: Machine,
    quiet: bool,
    took_s: f64,
    commit: String,
    binaries: String,
    /// (name, args, exit ok)
    steps: Vec<(String, Vec<String>, bool)>,
    core: Option<String>,
}

/// One step: its name, its arguments after `quiver-load`, and its result.
struct Step {
    name: String,
    args: Vec<String>,
    result: Option<Value>,
    ok: bool,
}

/// Runs everything (or nothing, with `--render-only`) and writes the file.
pub async fn run(args: &BenchAllArgs) -> anyhow::Result<bool> {
    let meta_path = args.results.join("bench-all.json");
    if args.render_only {
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("cannot read {}; run bench-all first", meta_path.display()))?;
        let meta: Meta = serde_json::from_str(&text).context("bad bench-all.json")?;
        return write(args, &meta);
    }
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let quiver = args
        .quiver
        .clone()
        .unwrap_or_else(|| exe.with_file_name("quiver"));
    std::fs::create_dir_all(&args.results)?;
    let waited = wait_quiet(args.wait_quiet).await;
    let machine_before = Machine::now();
    let started = Instant::now();
    let out = |name: &str| args.results.join(name).display().to_string();
    let q = quiver.display().to_string();
    let bench = |kind: &str, name: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "bench",
            kind,
            "--quiver",
            &q,
            "--out",
            &out(name),
            "--progress",
            "lines",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut steps = Vec::new();
    for rate in ["1", "10", "50"] {
        steps.push((
            format!("chat-{rate}"),
            bench(
                "chat",
                &format!("chat-{rate}"),
                &[
                    "--rooms",
                    "10",
                    "--members",
                    "10",
                    "--rate",
                    rate,
                    "--duration",
                    "10",
                ],
            ),
        ));
    }
    steps.push((
        "fanout".into(),
        bench(
            "fanout",
            "fanout",
            &[
                "--subscribers",
                "1000",
                "--publishers",
                "1",
                "--rate",
                "0",
                "--size",
                "100",
                "--duration",
                "10",
            ],
        ),
    ));
    let mut counts = vec![10_000u32];
    if args.max_connections > 10_000 {
        counts.push(args.max_connections);
    }
    for n in counts {
        let sockets = if n > 20_000 { "256" } else { "64" };
        let name = format!("connections-{n}");
        let n = n.to_string();
        steps.push((
            name.clone(),
            bench(
                "connections",
                &name,
                &[
                    "--connections",
                    &n,
                    "--sockets",
                    sockets,
                    "--connect-concurrency",
                    "256",
                    "--duration",
                    "10",
                ],
            ),
        ));
    }
    steps.push((
        "reconnect-storm".into(),
        bench(
            "reconnect-storm",
            "reconnect-storm",
            &[
                "--clients",
                "10000",
                "--channels",
                "100",
                "--rate",
                "200",
                "--sockets",
                "64",
                "--connect-concurrency",
                "256",
                "--warmup",
                "2",
                "--duration",
                "20",
                "--storm-after",
                "3",
                "--drain",
                "30",
            ],
        ),
    ));
    steps.push((
        "reconnect-storm-paced".into(),
        bench(
            "reconnect-storm",
            "reconnect-storm-paced",
            &[
                "--clients",
                "10000",
                "--channels",
                "100",
                "--rate",
                "200",
                "--sockets",
                "64",
                "--connect-concurrency",
                "256",
                "--warmup",
                "2",
                "--duration",
                "20",
                "--storm-after",
                "3",
                "--drain",
                "30",
                "--reconnect-concurrency",
                "256",
            ],
        ),
    ));
    // Live tracking at the aim (10,000 entities × 1/s, 1,000 watchers),
    // with each position reaching one watcher (1,000 channels) and ten
    // (100 channels: 100,000 positions/s to watchers), after two lighter
    // runs with fewer watchers that show where staleness starts to grow.
    for run in TRACKING_RUNS {
        let name = tracking_step(run);
        let w = run.0.to_string();
        let c = run.1.to_string();
        steps.push((
            name.clone(),
            bench(
                "tracking",
                &name,
                &[
                    "--entities",
                    "10000",
                    "--rate",
                    "1",
                    "--watchers",
                    &w,
                    "--channels",
                    &c,
                    "--track-limit",
                    "50",
                    "--sockets",
                    "64",
                    "--connect-concurrency",
                    "256",
                    "--warmup",
                    "5",
                    "--duration",
                    "30",
                ],
            ),
        ));
    }
    if let Some(cql) = &args.cql {
        steps.push((
            "persist".into(),
            bench(
                "persist",
                "persist",
                &[
                    "--cql",
                    cql,
                    "--publishers",
                    "16",
                    "--inflight",
                    "32",
                    "--duration",
                    "10",
                ],
            ),
        ));
    }

    let mut done = Vec::new();
    for (name, step_args) in steps {
        eprintln!("== bench-all: {name}: quiver-load {}", step_args.join(" "));
        let status = tokio::process::Command::new(&exe)
            .args(&step_args)
            .status()
            .await
            .with_context(|| format!("cannot run step {name}"))?;
        done.push(Step {
            name,
            args: step_args,
            result: None,
            ok: status.success(),
        });
    }
    let core = if args.no_core {
        None
    } else {
        Some(run_core(&exe, &args.results.join("core")).await)
    };
    let meta = Meta {
        machine_before,
        machine_after: Machine::now(),
        quiet: waited,
        took_s: started.elapsed().as_secs_f64(),
        commit: commit(),
        binaries: format!("`{}` and `{}`", exe.display(), quiver.display()),
        steps: done.into_iter().map(|s| (s.name, s.args, s.ok)).collect(),
        core,
    };
    crate::report::write_json(&meta_path, &meta)?;
    write(args, &meta)
}

/// Renders the file from the run's meta and the steps' JSON.
fn write(args: &BenchAllArgs, meta: &Meta) -> anyhow::Result<bool> {
    let steps: Vec<Step> = meta
        .steps
        .iter()
        .map(|(name, step_args, ok)| {
            let kind = step_args.get(1).cloned().unwrap_or_default();
            let json = args.results.join(name).join(format!("{kind}.json"));
            Step {
                name: name.clone(),
                args: step_args.clone(),
                result: std::fs::read_to_string(&json)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok()),
                ok: *ok,
            }
        })
        .collect();
    let markdown = render(&steps, meta, args);
    std::fs::write(&args.output, markdown)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("wrote {}", args.output.display());
    Ok(steps.iter().all(|s| s.ok))
}

/// The checked-out commit, marked when the tree has changes (read-only git).
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) if git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()) => {
            format!("{head} (with uncommitted changes)")
        }
        Some(head) => head,
        None => "unknown".into(),
    }
}

/// Waits for a quiet machine; returns whether it got quiet.
async fn wait_quiet(limit: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(limit);
    loop {
        if load_1m() < 1.0 {
            return true;
        }
        if Instant::now() >= deadline {
            eprintln!("!! load average still {}; running anyway", load_average());
            return false;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// bench-core.sh with this binary's folder; returns its summary.md.
async fn run_core(exe: &Path, results: &Path) -> String {
    let script = Path::new("load-tests/bench-core.sh");
    let bin = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    eprintln!("== bench-all: core: load-tests/bench-core.sh");
    let status = tokio::process::Command::new("bash")
        .arg(script)
        .env("BIN", &bin)
        .env("RESULTS", results)
        .stdout(std::process::Stdio::null())
        .status()
        .await;
    match (status, std::fs::read_to_string(results.join("summary.md"))) {
        (Ok(_), Ok(summary)) => summary,
        (status, _) => format!("bench-core.sh did not produce a summary ({status:?})\n"),
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn num(v: &Value, path: &[&str]) -> f64 {
    get(v, path).as_f64().unwrap_or(f64::NAN)
}

fn int(v: &Value, path: &[&str]) -> String {
    get(v, path)
        .as_u64()
        .map_or("-".into(), crate::report::grouped)
}

fn rate(x: f64) -> String {
    if x.is_finite() {
        crate::report::grouped(x.round().max(0.0) as u64)
    } else {
        "-".into()
    }
}

fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "-".into()
    }
}

fn kib(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", x / 1024.0)
    } else {
        "-".into()
    }
}

#[allow(clippy::too_many_lines)]
fn render(steps: &[Step], meta: &Meta, args: &BenchAllArgs) -> String {
    let (before, after, quiet) = (&meta.machine_before, &meta.machine_after, meta.quiet);
    let core = meta.core.as_deref();
    let mut md = String::new();
    let _ = writeln!(md, "# Quiver benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `quiver-load bench-all` (`load-tests/bench-all.sh`) on {} UTC in {:.0} min; \
         regenerate it rather than editing it. Every figure below comes from the JSON files of \
         that run (`{}`), and every command is listed at the end.\n",
        before.date_utc,
        meta.took_s / 60.0,
        args.results.display()
    );
    let _ = writeln!(
        md,
        "- machine: {} CPUs ({}), {} GiB RAM, Linux {}",
        before.cpus, before.cpu_model, before.memory_gib, before.kernel
    );
    let _ = writeln!(
        md,
        "- load average: {} before, {} after{}",
        before.load_average,
        after.load_average,
        if quiet {
            ""
        } else {
            " — **the machine was shared and never got quiet (load ≥ 1.0); figures are noisier and lower than on an idle machine**"
        }
    );
    let _ = writeln!(
        md,
        "- commit: {}; binaries: {} (release profile)",
        meta.commit, meta.binaries
    );
    let _ = writeln!(
        md,
        "- the gateway, the floor and the load generator share the machine and talk over loopback; the servers run one at a time\n"
    );

    let by = |name: &str| steps.iter().find(|s| s.name == name);
    let verdict = |s: &Step| if s.ok { "PASS" } else { "FAIL" };

    let _ = writeln!(
        md,
        "## Chat latency (10 rooms × 10 members, 100-byte messages)\n"
    );
    let _ = writeln!(
        md,
        "| rate per member | target msg/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | ack p50 ms | ack p99 ms | gaps | dups | undelivered | result |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for rate_s in ["1", "10", "50"] {
        if let Some(step) = by(&format!("chat-{rate_s}")) {
            match &step.result {
                Some(r) => {
                    let g = &r["gateway"];
                    let _ = writeln!(
                        md,
                        "| {rate_s}/s | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        rate(num(g, &["target_publish_rate"])),
                        rate(num(g, &["delivery_rate"])),
                        ms(num(g, &["latency", "p50_ms"])),
                        ms(num(g, &["latency", "p90_ms"])),
                        ms(num(g, &["latency", "p99_ms"])),
                        ms(num(g, &["latency", "p999_ms"])),
                        ms(num(g, &["ack_latency", "p50_ms"])),
                        ms(num(g, &["ack_latency", "p99_ms"])),
                        int(g, &["gaps"]),
                        int(g, &["duplicates"]),
                        int(g, &["undelivered"]),
                        verdict(step)
                    );
                }
                None => {
                    let _ = writeln!(
                        md,
                        "| {rate_s}/s | (no result; see {}) |||||||||||| FAIL |",
                        step.name
                    );
                }
            }
        }
    }

    let _ = writeln!(
        md,
        "\n## Fan-out peak against the bare-quinn floor (1,000 subscribers, 1 publisher, 100-byte messages, as fast as acks allow)\n"
    );
    if let Some(step) = by("fanout") {
        match &step.result {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "| side | deliveries/s | acked msg/s | p50 ms | p99 ms | gaps | dups | undelivered | server CPU s | deliveries per server CPU s | load generator CPU s |"
                );
                let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
                for (label, key, cpu) in [
                    ("gateway", "gateway", "gateway_cpu"),
                    ("floor", "baseline", "baseline_cpu"),
                ] {
                    let s = &r[key];
                    if s.is_null() {
                        continue;
                    }
                    let server_cpu = num(r, &[cpu, "server_s"]);
                    let _ = writeln!(
                        md,
                        "| {label} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} |",
                        rate(num(s, &["delivery_rate"])),
                        rate(num(s, &["publish_rate"])),
                        ms(num(s, &["latency", "p50_ms"])),
                        ms(num(s, &["latency", "p99_ms"])),
                        int(s, &["gaps"]),
                        int(s, &["duplicates"]),
                        int(s, &["undelivered"]),
                        server_cpu,
                        rate(num(s, &["delivered_total"]) / server_cpu),
                        num(r, &[cpu, "load_generator_s"])
                    );
                }
                let _ = writeln!(
                    md,
                    "\nBoth sides publish as fast as acks allow with 64 publishes in flight; the gateway acks after the store's fsync, the floor right after fan-out. Server and load generator share the 2 CPUs, so a heavier client library also takes CPU from the server; the CPU columns (whole run: connect, warmup, measurement, drain) show where the time went."
                );
                let ratio = num(r, &["ratio"]);
                let _ = writeln!(
                    md,
                    "\n**Gateway ÷ floor, deliveries/s: {:.2}** (goal: 0.50 or more — {}). {}",
                    ratio,
                    if ratio >= 0.5 { "met" } else { "not met" },
                    verdict(step)
                );
            }
            None => {
                let _ = writeln!(md, "(no result; the run failed — see {}/)", step.name);
            }
        }
    }

    let _ = writeln!(md, "\n## Memory per idle connection (gateway vs floor)\n");
    let _ = writeln!(
        md,
        "Each connection: QUIC + TLS 1.3 handshake, then the gateway's Hello/Welcome (floor: a HELLO/WELCOME frame pair) on a control stream that stays open; keep-alives every 25 s, nothing else. Server memory is VmRSS of the server process (`/proc/PID/status`) at the end of the hold minus before the ramp, divided by the connections. Client memory is the load generator's own growth for the quiver-client connections (the floor's clients run second in the same process and reuse freed memory, so theirs is not measured).\n"
    );
    let _ = writeln!(
        md,
        "| connections | side | connected | failed | handshakes/s | server RSS before → end (MiB) | KiB per connection | client KiB per connection |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for step in steps.iter().filter(|s| s.name.starts_with("connections-")) {
        let n = step.name.trim_start_matches("connections-");
        match &step.result {
            Some(r) => {
                for (label, key) in [("gateway", "gateway"), ("floor", "baseline")] {
                    let s = &r[key];
                    if s.is_null() {
                        continue;
                    }
                    let _ = writeln!(
                        md,
                        "| {} | {label} | {} | {} | {} | {:.0} → {:.0} | {} | {} |",
                        rate(n.parse::<f64>().unwrap_or(f64::NAN)),
                        int(s, &["connected"]),
                        int(s, &["failed"]),
                        rate(num(s, &["handshake_rate"])),
                        num(s, &["server_rss_before_bytes"]) / 1048576.0,
                        num(s, &["server_rss_end_bytes"]) / 1048576.0,
                        kib(num(s, &["server_bytes_per_connection"])),
                        if key == "gateway" {
                            kib(num(s, &["client_bytes_per_connection"]))
                        } else {
                            "n/a".into()
                        }
                    );
                }
                ratios.push((n.to_owned(), num(r, &["ratio"])));
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {n} | (no result; the run failed — see {}/) |||||||",
                    step.name
                );
            }
        }
    }
    for (n, ratio) in ratios {
        let _ = writeln!(
            md,
            "\n**{} connections: gateway ÷ floor memory per connection: {:.2}** (goal: 1.15 or less — {}).",
            rate(n.parse::<f64>().unwrap_or(f64::NAN)),
            ratio,
            if ratio <= 1.15 { "met" } else { "not met" }
        );
    }

    let _ = writeln!(md, "\n## Reconnect storm\n");
    let _ = writeln!(
        md,
        "| reconnects | clients | channels | msg/s during the storm | all resumed after (s) | resume p50 / p99 ms | failed attempts | published | lost | gaps | dups | result |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, how) in [
        ("reconnect-storm", "all at once"),
        ("reconnect-storm-paced", "256 at a time"),
    ] {
        let Some(step) = by(name) else { continue };
        match &step.result {
            Some(r) => {
                let g = &r["gateway"];
                let _ = writeln!(
                    md,
                    "| {how} | {} | {} | {} | {:.2} | {} / {} | {} | {} | {} | {} | {} | {} |",
                    int(g, &["clients"]),
                    int(g, &["channels"]),
                    rate(num(g, &["rate"])),
                    num(g, &["storm_resumed_s"]),
                    ms(num(g, &["resume_ms", "p50_ms"])),
                    ms(num(g, &["resume_ms", "p99_ms"])),
                    int(g, &["failed_attempts"]),
                    int(g, &["published"]),
                    int(g, &["lost"]),
                    int(g, &["gaps"]),
                    int(g, &["duplicates"]),
                    verdict(step)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {how} | (no result; the run failed — see {}/) |||||||||| FAIL |",
                    step.name
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "\nEvery client closes its connection at the same moment, opens a new one and resubscribes with `since` = the last offset it received, while publishers keep publishing. A failed attempt (a handshake that timed out after the client's 10 s connect timeout under the burst) is retried with jittered backoff, as an app would. Lost counts acked messages a client never received."
    );

    let tracking: Vec<&Step> = TRACKING_RUNS
        .iter()
        .filter_map(|run| by(&tracking_step(*run)))
        .collect();
    if !tracking.is_empty() {
        render_tracking(&mut md, &tracking);
    }

    let _ = writeln!(
        md,
        "\n## Persistence on the CQL backend vs the raw driver\n"
    );
    match by("persist") {
        Some(step) => match &step.result {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "| side | messages persisted/s | ack p50 ms | ack p99 ms | errors |"
                );
                let _ = writeln!(md, "|---|---|---|---|---|");
                for (label, key) in [
                    ("gateway (`--store scylla://`)", "gateway"),
                    ("raw scylla driver", "baseline"),
                ] {
                    let s = &r[key];
                    if s.is_null() {
                        continue;
                    }
                    let _ = writeln!(
                        md,
                        "| {label} | {} | {} | {} | {} |",
                        rate(num(s, &["persisted_rate"])),
                        ms(num(s, &["ack_latency", "p50_ms"])),
                        ms(num(s, &["ack_latency", "p99_ms"])),
                        int(s, &["errors"])
                    );
                }
                let ratio = num(r, &["ratio"]);
                let _ = writeln!(
                    md,
                    "\n**Gateway ÷ raw driver: {ratio:.2}** (goal: 0.80 or more — {}). Both sides write the same rows (message + idempotency record, 100-byte payloads) to the same single Cassandra 5.0 node (`deploy/cql-node.sh`) with 16 writers × 32 in flight.",
                    if ratio >= 0.8 { "met" } else { "not met" }
                );
            }
            None => {
                let _ = writeln!(md, "(no result; the run failed — see {}/)", step.name);
            }
        },
        None => {
            let _ = writeln!(
                md,
                "Not run: pass `--cql HOST:PORT` (bench-all.sh starts a node with deploy/cql-node.sh)."
            );
        }
    }

    if let Some(core) = core {
        let _ = writeln!(
            md,
            "\n## Core fan-out benchmark (load-tests/bench-core.sh)\n"
        );
        // Its own heading becomes a sub-heading here.
        let _ = writeln!(md, "{}", core.replacen("## ", "### ", 1));
    }

    let _ = writeln!(md, "\n## What each side does\n");
    let _ = writeln!(
        md,
        "- **gateway**: `quiver serve` (release build) with a temporary data dir, the embedded store (one fsync per group of publishes) unless noted, tenant `bench`, publish limits lifted; clients are `quiver-client` (FlatBuffers frames, JWT auth, idempotency keys, offsets, resume) spread over shared UDP sockets."
    );
    let _ = writeln!(
        md,
        "- **floor**: `quiver-load floor`, bare quinn with the gateway's certificate, TLS 1.3 (ring) and transport windows; length-prefixed frames, one channel, offsets counted in memory, fan-out through one ring of 1,024 messages and one writer task per subscription; no session, no auth, no store. Its clients are raw quinn on the same shared sockets, with the same payloads and the same checks (offsets, latency stamps)."
    );
    let _ = writeln!(
        md,
        "- **raw driver**: the scylla crate writing the gateway's two rows per message (`messages`, `idempotency`) as prepared single-row INSERTs, same consistency and concurrency."
    );

    let _ = writeln!(
        md,
        "\n## Commands\n\nRun from the repository root with release binaries (`cargo build --release -p quiver-server -p quiver-load`); `load-tests/bench-all.sh` does all of it.\n\n```"
    );
    for step in steps {
        let _ = writeln!(md, "quiver-load {}", step.args.join(" "));
    }
    if core.is_some() {
        let _ = writeln!(md, "BIN=<release dir> load-tests/bench-core.sh");
    }
    let _ = writeln!(md, "```");
    md
}

/// How many entities each watcher of a tracking run sees.
fn entities_per_channel(g: &Value) -> String {
    match (g["entities"].as_u64(), g["channels"].as_u64()) {
        (Some(entities), Some(channels)) if channels > 0 => {
            crate::report::grouped(entities / channels)
        }
        _ => "-".to_owned(),
    }
}

/// The live-tracking section: one row per run (fewer watchers first, the
/// aim last), then the aim's verdicts: staleness p99 under the goal.
fn render_tracking(md: &mut String, steps: &[&Step]) {
    let first = steps.iter().find_map(|s| s.result.as_ref());
    let _ = writeln!(
        md,
        "\n## Live tracking (10,000 entities × 1 position/s; the aim: 1,000 watchers, staleness p99 under 50 ms)\n"
    );
    if let Some(r) = first {
        let _ = writeln!(
            md,
            "Run {} UTC (its own timestamp: this section may come from a later run than the rest of the file, with the binaries its commands below name; load average {} after the first of its runs). Each entity reports its position (a `Track` datagram stamped with the wall-clock time it was sent); entity `e` lives on channel `track:load-(e % channels)` and rides one of 250 tracker connections, each sending 40 positions/s, under the gateway's per-connection `[limits] track_rate_per_sec` of 50 (the bench writes it into the gateway's config), their sends evenly spaced. Watchers spread evenly over the channels (max rate: the namespace's, 10/s per entity): over 100 channels each watcher sees 100 entities and every position goes to 10 watchers (at 1,000 watchers); over 1,000 channels each sees 10 and every position goes to one. Both are 10,000 entities at 1/s with 1,000 watchers, the aim; they differ in how much each watcher watches. **Staleness** is a position's age when a watcher gets it: receipt time − its timestamp, both on this machine's clock (timestamps are whole ms, so it reads up to 1 ms high), live updates inside the 30 s window only (not the snapshot a watch starts with). Lost on the way in: positions the trackers sent that the gateway neither took nor counted as dropped (datagrams lost before it). Skipped: sends the load generator dropped because it fell more than one interval behind its schedule. CPU columns cover the whole run (connect, 5 s warmup, 30 s window, settle).\n",
            get(r, &["machine", "date_utc"]).as_str().unwrap_or("?"),
            get(r, &["machine", "load_average"]).as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(
        md,
        "| watchers | channels | entities per watcher | expected to watchers/s | sent/s | delivered/s | staleness p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | skipped | lost on the way in | dropped by the gateway | server CPU s | load generator CPU s | result |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for step in steps {
        let Some(r) = &step.result else {
            let _ = writeln!(
                md,
                "| {} | (no result; the run failed — see {}/) ||||||||||||||| FAIL |",
                step.name, step.name
            );
            continue;
        };
        let g = &r["gateway"];
        let counted = &g["gateway"];
        let dropped: u64 = counted["dropped"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        let (dropped_text, lost) = match counted["accepted"].as_u64() {
            Some(accepted) => {
                let sent = g["sent_total"].as_u64().unwrap_or(0);
                (
                    crate::report::grouped(dropped),
                    crate::report::grouped(sent.saturating_sub(accepted + dropped)),
                )
            }
            None => ("-".to_owned(), "-".to_owned()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {lost} | {dropped_text} | {:.1} | {:.1} | {} |",
            int(g, &["watchers"]),
            int(g, &["channels"]),
            entities_per_channel(g),
            rate(num(g, &["expected_delivery_rate"])),
            rate(num(g, &["send_rate"])),
            rate(num(g, &["delivery_rate"])),
            ms(num(g, &["staleness", "p50_ms"])),
            ms(num(g, &["staleness", "p90_ms"])),
            ms(num(g, &["staleness", "p99_ms"])),
            ms(num(g, &["staleness", "p999_ms"])),
            ms(num(g, &["staleness", "max_ms"])),
            int(g, &["skipped"]),
            num(r, &["gateway_cpu", "server_s"]),
            num(r, &["gateway_cpu", "load_generator_s"]),
            if step.ok { "PASS" } else { "FAIL" }
        );
    }
    let mut saturated = None;
    for aim in steps
        .iter()
        .filter(|s| s.name == "tracking" || s.name.starts_with("tracking-1000-"))
    {
        let Some(r) = &aim.result else { continue };
        let g = &r["gateway"];
        let p99 = num(g, &["staleness", "p99_ms"]);
        let goal = num(g, &["staleness_goal_ms"]);
        let verdict = if p99 < goal {
            "met".to_owned()
        } else if p99.is_finite() {
            saturated = Some(r);
            format!("not met, by {:.0} ms", p99 - goal)
        } else {
            "no samples".to_owned()
        };
        let _ = writeln!(
            md,
            "\n**At the aim, {} entities per watcher ({} positions/s expected to watchers): staleness p99 {} ms** (goal: under {:.0} ms — {verdict}); {} of the expected positions/s delivered.",
            entities_per_channel(g),
            rate(num(g, &["expected_delivery_rate"])),
            ms(p99),
            goal,
            rate(num(g, &["delivery_rate"]))
        );
    }
    let Some(r) = saturated else { return };
    let g = &r["gateway"];
    let window = num(g, &["warmup_s"]) + num(g, &["duration_s"]);
    let (server_cpu, load_cpu) = (
        num(r, &["gateway_cpu", "server_s"]),
        num(r, &["gateway_cpu", "load_generator_s"]),
    );
    if server_cpu.is_finite() && window > 0.0 {
        let _ = writeln!(
            md,
            "\nThe gateway and the load generator share the machine's {} CPUs: over about {window:.0} s of load they used {server_cpu:.0} and {load_cpu:.0} CPU s, i.e. the machine was saturated. At one update per entity per second a watcher's batch rarely holds more than one position, so nearly every delivery is its own datagram and both sides pay per-datagram encryption and syscalls, on the order of 100,000 times per second each way; once the CPUs cannot keep up, staleness is mostly time spent queued, and the 100-watcher row shows what the path costs while they can. The generator falling behind (skipped sends) is the same saturation on its side.",
            get(r, &["machine", "cpus"])
        );
    }
}
