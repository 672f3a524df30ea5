//! The `quiver` command line. Command, flag and output names are an
//! interface users script against: keep them stable.

mod apikey;
mod client;
mod plugin;
mod serve;
mod token;
mod tracking;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "quiver",
    version,
    about = "Quiver: a realtime gateway for mobile apps over QUIC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (embedded store; dev tenant `demo` without --config).
    Serve(serve::ServeArgs),
    /// Print a signed JWT for a user of a tenant.
    Token(token::TokenArgs),
    /// Print a tenant's key of the HTTP publish API.
    #[command(name = "apikey")]
    ApiKey(apikey::ApiKeyArgs),
    /// Publish one message and print its ack as a JSON line.
    Pub(client::PubArgs),
    /// Print a channel's messages as JSON lines.
    Sub(client::SubArgs),
    /// Print a page of a channel's history as JSON lines.
    History(client::HistoryArgs),
    /// Interactive chat: lines from stdin are published, messages printed.
    Chat(client::ChatArgs),
    /// Report one position of an entity on a tracking channel.
    Track(tracking::TrackArgs),
    /// Print a tracking channel's positions as JSON lines.
    Watch(tracking::WatchArgs),
    /// Manage a tenant's WebAssembly plugins (admin API).
    Plugin(plugin::PluginArgs),
}

/// Where the server's config and data live (shared by `serve`, `token` and
/// `apikey`).
#[derive(Debug, Args)]
struct ConfigArgs {
    /// Config file (TOML). Without one, the dev tenant `demo` is used.
    #[arg(long, env = "QUIVER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides server.data_dir).
    #[arg(long, env = "QUIVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// The config file (or dev mode) with the --data-dir override applied.
    fn load(&self) -> anyhow::Result<quiver_server::setup::Loaded> {
        let mut loaded = quiver_server::setup::Loaded::from_file(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            loaded.config.server.data_dir = dir.clone();
        }
        Ok(loaded)
    }
}

/// Where a tenant's credentials live: the dev data dir, or its section of
/// the config file (relative paths resolved from `base`).
enum TenantSource<'a> {
    Dev(&'a std::path::Path),
    Configured {
        section: &'a quiver_server::config::TenantSection,
        base: &'a std::path::Path,
    },
}

fn tenant_source<'a>(
    loaded: &'a quiver_server::setup::Loaded,
    tenant: &str,
) -> anyhow::Result<TenantSource<'a>> {
    use anyhow::Context as _;
    use quiver_server::tenants::DEV_TENANT;
    if loaded.dev {
        anyhow::ensure!(
            tenant == DEV_TENANT,
            "without --config only the dev tenant {DEV_TENANT:?} exists"
        );
        return Ok(TenantSource::Dev(&loaded.config.server.data_dir));
    }
    let section = loaded
        .config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .with_context(|| format!("tenant {tenant:?} is not in the config"))?;
    Ok(TenantSource::Configured {
        section,
        base: &loaded.base,
    })
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Token(args) => token::run(args),
            Command::ApiKey(args) => apikey::run(args),
            Command::Pub(args) => client::publish(args).await,
            Command::Sub(args) => client::subscribe(args).await,
            Command::History(args) => client::history(args).await,
            Command::Chat(args) => client::chat(args).await,
            Command::Track(args) => tracking::track(args).await,
            Command::Watch(args) => tracking::watch(args).await,
            Command::Plugin(args) => plugin::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so stdout stays clean JSON lines.
fn init_logging(default_filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
