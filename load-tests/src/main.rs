//! `quiver-load`: the command line. Every run is bounded in time and stops
//! by itself; the exit code says whether delivery guarantees held.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use quiver_load::bench::all::BenchAllArgs;
use quiver_load::bench::{self, BenchCommand};
use quiver_load::common::CommonArgs;
use quiver_load::floor::server::FloorArgs;
use quiver_load::report::emit;
use quiver_load::scenarios::chat::{self, ChatArgs};
use quiver_load::scenarios::connections::{self, ConnectionsArgs, Target};
use quiver_load::scenarios::fanout::{self, FanoutArgs};
use quiver_load::scenarios::persist::{self, PersistArgs, RawArgs};
use quiver_load::scenarios::reconnect::{self, ReconnectArgs};
use quiver_load::scenarios::tracking::{self, TrackingArgs};

#[derive(Debug, Parser)]
#[command(
    name = "quiver-load",
    version,
    about = "Load generator and benchmarks for the Quiver gateway",
    // A later flag overrides an earlier one: `run FILE --duration 5`.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// R rooms × M members, each publishing into its room: latency,
    /// deliveries/s, gaps and duplicates.
    Chat(Scenario<ChatArgs>),
    /// One channel, N subscribers, P publishers: broadcast throughput and
    /// publish→deliver latency (--floor: against `quiver-load floor`).
    Fanout(FanoutCommand),
    /// Ramp to N mostly idle connections, hold them: handshake rate,
    /// failures, server memory per connection.
    Connections(Scenario<ConnectionsArgs>),
    /// N subscribers drop and resume with `since` at once: time until all
    /// are resumed, messages lost.
    ReconnectStorm(Scenario<ReconnectArgs>),
    /// Publishers as fast as acks allow: messages persisted per second.
    Persist(Scenario<PersistArgs>),
    /// N entities over C `track:` channels report R positions/s each; M
    /// watchers watch them: positions sent and delivered per second, and
    /// staleness (age of each position when a watcher gets it).
    Tracking(Scenario<TrackingArgs>),
    /// The raw CQL driver writing the rows `persist` makes the gateway write.
    PersistRaw(PersistRawCommand),
    /// The bare-quinn floor server (transport only, for baselines).
    Floor(FloorArgs),
    /// Starts a gateway (and the floor or raw baseline), runs a scenario
    /// against each, prints the ratio, writes JSON and HTML.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Runs every benchmark and writes load-tests/BENCHMARKS.md.
    BenchAll(BenchAllArgs),
    /// Runs a TOML scenario file (`scenario = "chat"` plus flags); flags
    /// after the file override it.
    Run(RunCommand),
}

#[derive(Debug, Args)]
struct Scenario<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    args: A,
}

#[derive(Debug, Args)]
struct FanoutCommand {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    fanout: FanoutArgs,
    /// The server is `quiver-load floor`: use thin raw-quinn clients.
    #[arg(long)]
    floor: bool,
}

#[derive(Debug, Args)]
struct PersistRawCommand {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    args: PersistArgs,
    #[command(flatten)]
    raw: RawArgs,
}

#[derive(Debug, Args)]
struct RunCommand {
    /// The scenario file.
    file: PathBuf,
    /// Flags that override the file's.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `Ok(false)` when it ran but its checks failed.
async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Chat(s) => emit(&s.common, &chat::run(&s.common, &s.args).await?),
        Command::Fanout(FanoutCommand {
            common,
            fanout,
            floor,
        }) => {
            let report = if floor {
                quiver_load::floor::fanout(&common, &fanout).await?
            } else {
                fanout::run(&common, &fanout).await?
            };
            emit(&common, &report)
        }
        Command::Connections(s) => {
            if s.args.target == Target::Floor && s.common.ca.is_none() && !s.common.insecure {
                anyhow::bail!(
                    "the floor needs --insecure, or --ca with the PEM it was started with"
                );
            }
            emit(&s.common, &connections::run(&s.common, &s.args).await?)
        }
        Command::ReconnectStorm(s) => emit(&s.common, &reconnect::run(&s.common, &s.args).await?),
        Command::Persist(s) => emit(&s.common, &persist::run(&s.common, &s.args).await?),
        Command::Tracking(s) => emit(&s.common, &tracking::run(&s.common, &s.args).await?),
        Command::PersistRaw(c) => emit(
            &c.common,
            &persist::run_raw(&c.common, &c.args, &c.raw).await?,
        ),
        Command::Floor(args) => {
            quiver_load::floor::server::run(&args).await?;
            Ok(true)
        }
        Command::Bench(command) => Box::pin(bench::run(command)).await,
        Command::BenchAll(args) => bench::all::run(&args).await,
        Command::Run(RunCommand { file, overrides }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let mut argv = vec!["quiver-load".to_owned()];
            argv.extend(quiver_load::scenario_file::to_args(&text)?);
            argv.extend(overrides);
            let cli = Cli::try_parse_from(&argv)
                .map_err(|e| anyhow::anyhow!("{} as `{}`:\n{e}", file.display(), argv.join(" ")))?;
            if matches!(cli.command, Command::Run(_)) {
                anyhow::bail!("a scenario file cannot run another scenario file");
            }
            Box::pin(run(cli.command)).await
        }
    }
}

/// Logs go to stderr (`RUST_LOG` overrides); stdout carries the report.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
