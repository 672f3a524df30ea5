//! `quiver-load`: the command line. Every run is bounded in time and stops
//! by itself; the exit code says whether delivery guarantees held.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use quiver_load::common::CommonArgs;
use quiver_load::report::write_json;
use quiver_load::scenarios::fanout::{self, FanoutArgs};

#[derive(Debug, Parser)]
#[command(
    name = "quiver-load",
    version,
    about = "Load generator for the Quiver gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One channel, N subscribers, P publishers: broadcast throughput and
    /// publish→deliver latency.
    Fanout(FanoutCommand),
}

#[derive(Debug, Args)]
struct FanoutCommand {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    fanout: FanoutArgs,
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
        Command::Fanout(FanoutCommand { common, fanout }) => {
            let report = fanout::run(&common, &fanout).await?;
            print!("{}", report.table().render());
            if let Some(path) = &common.json {
                write_json(path, &report)?;
                eprintln!("wrote {}", path.display());
            }
            Ok(report.passed)
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
