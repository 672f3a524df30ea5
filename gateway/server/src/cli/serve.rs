use std::net::SocketAddr;

use clap::Args;
use tracing::info;

use quiver_server::setup::{bind, open_store};
use quiver_server::tenants::DEV_TENANT;
use quiver_server::tls::dev_cert_path;

use super::{ConfigArgs, init_logging};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// UDP address for QUIC (overrides server.listen; default 0.0.0.0:4433).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// TCP address for /healthz, /readyz, /metrics (default 127.0.0.1:9090).
    #[arg(long)]
    ops_listen: Option<SocketAddr>,
    /// TCP address of the HTTP API: publish API and plugin admin (default
    /// 127.0.0.1:8080).
    #[arg(long)]
    api_listen: Option<SocketAddr>,
    /// The store: `embedded` or scylla://host:9042[,host2:9042]/keyspace
    /// (overrides store.url).
    #[arg(long, env = "QUIVER_STORE")]
    store: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging("info", args.log_json);
    let mut loaded = args.config.load()?;
    if let Some(listen) = args.listen {
        loaded.config.server.listen = listen;
    }
    if let Some(ops) = args.ops_listen {
        loaded.config.server.ops_listen = ops;
    }
    if let Some(api) = args.api_listen {
        loaded.config.api.listen = api;
    }
    if let Some(store) = args.store {
        loaded.config.store.url = store;
    }
    let store = open_store(&loaded.config).await?;
    let gateway = bind(&loaded, store.store()).await?;
    info!(
        quic = %gateway.local_addr()?,
        ops = %gateway.ops_addr()?,
        api = %gateway.api_addr()?,
        data_dir = %loaded.config.server.data_dir.display(),
        "listening"
    );
    if loaded.dev {
        let data_dir = loaded.config.server.data_dir.display();
        info!(
            "dev mode: tenant {DEV_TENANT:?}; get a token with `quiver token --data-dir {data_dir} --tenant {DEV_TENANT} --user alice` and trust the certificate with `--ca {}`; backends get the publish API key with `quiver apikey --data-dir {data_dir} --tenant {DEV_TENANT}`",
            dev_cert_path(&loaded.config.server.data_dir).display()
        );
    }
    let result = gateway.run(shutdown_signal()).await;
    store.close().await;
    result
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
