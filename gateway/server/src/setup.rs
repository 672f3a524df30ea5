//! From a config file (or none: dev mode) and command-line overrides to a
//! bound [`Gateway`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use quiver_proto::ALPN;
use quiver_storage::Store;
use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use quiver_storage::scylla::{ScyllaConfig, ScyllaStore};
use tracing::info;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugins::{PluginPublisher, WasmPlugins};
use crate::quic::ALPN_H3;
use crate::server::{Gateway, GatewayConfig};
use crate::tenants::{admin_token, api_keys, authenticator};
use crate::tls::Identity;
use quiver_plugin_host::{HostConfig, HostServices, PluginHost};

/// The loaded configuration and where relative paths in it resolve from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// No config file: the dev tenant `demo` with a secret in the data dir.
    pub dev: bool,
    /// The config file's folder (or the working directory in dev mode).
    pub base: PathBuf,
}

impl Loaded {
    pub fn from_file(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            Some(path) => {
                let mut config = Config::load(path)?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                config.server.data_dir = base.join(&config.server.data_dir);
                Ok(Self {
                    config,
                    dev: false,
                    base,
                })
            }
            None => Ok(Self {
                config: Config::default(),
                dev: true,
                base: PathBuf::from("."),
            }),
        }
    }
}

/// An open store, kept by its concrete type so it can be closed cleanly.
#[derive(Debug, Clone)]
pub enum OpenStore {
    Embedded(Arc<EmbeddedStore>),
    Scylla(Arc<ScyllaStore>),
}

impl OpenStore {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            OpenStore::Embedded(store) => store.clone(),
            OpenStore::Scylla(store) => store.clone(),
        }
    }

    /// Finishes what was accepted and releases the store.
    pub async fn close(&self) {
        match self {
            OpenStore::Embedded(store) => store.close().await,
            OpenStore::Scylla(store) => store.close().await,
        }
    }
}

/// Opens the store the config names. A ScyllaDB cluster that cannot be
/// reached yet is retried with backoff (each attempt logged) until it
/// answers: a gateway started before its database comes up by itself.
pub async fn open_store(config: &Config) -> anyhow::Result<OpenStore> {
    let window = Duration::from_secs(config.store.idempotency_window_secs);
    let url = config.store.url.as_str();
    if url == "embedded" {
        let path = config.server.data_dir.join("store");
        let store = EmbeddedStore::open(EmbeddedConfig::new(&path).idempotency_window(window))
            .with_context(|| format!("cannot open the embedded store at {}", path.display()))?;
        info!(path = %path.display(), "embedded store open");
        return Ok(OpenStore::Embedded(Arc::new(store)));
    }
    if url.starts_with("scylla://") || url.starts_with("cql://") {
        let scylla = ScyllaConfig::from_url(url)?.idempotency_window(window);
        info!(
            nodes = ?scylla.nodes,
            keyspace = %scylla.keyspace,
            node_id = %scylla.node_id,
            "connecting to ScyllaDB"
        );
        let store = ScyllaStore::connect_with_retry(scylla, None).await?;
        info!("ScyllaDB store ready");
        return Ok(OpenStore::Scylla(Arc::new(store)));
    }
    bail!("store.url {url:?} is neither \"embedded\" nor a scylla://host:port/keyspace URL")
}

/// Binds a gateway for `loaded` on top of an already open store.
pub async fn bind(loaded: &Loaded, store: Arc<dyn Store>) -> anyhow::Result<Gateway> {
    let config = &loaded.config;
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data dir {}",
            config.server.data_dir.display()
        )
    })?;
    let limits = config.limits.to_limits()?;
    let identity = Identity::load_or_create(
        config
            .server
            .cert
            .as_deref()
            .map(|p| loaded.base.join(p))
            .as_deref(),
        config
            .server
            .key
            .as_deref()
            .map(|p| loaded.base.join(p))
            .as_deref(),
        &config.server.data_dir,
    )?;
    let auth = authenticator(config, loaded.dev, &loaded.base)?;
    let admin_token = admin_token(config, &loaded.base)?;
    let api_keys = api_keys(config, loaded.dev, &loaded.base)?;
    let metrics = Metrics::new().context("cannot register metrics")?;
    let publisher = PluginPublisher::default();
    let host = start_plugin_host(config, store.clone(), publisher.clone(), &metrics).await?;
    let plugins = Arc::new(WasmPlugins::new(host));
    Gateway::bind(GatewayConfig {
        listen: config.server.listen,
        ops_listen: config.server.ops_listen,
        tls: identity.server_config(&[ALPN, ALPN_H3])?,
        auth: Arc::new(auth),
        limits,
        channels: Arc::new(config.channel_rules()?),
        store,
        channel_buffer: config.server.channel_buffer,
        udp_socket_buffer_bytes: config.server.udp_socket_buffer_bytes,
        shutdown_grace: Duration::from_millis(config.server.shutdown_grace_ms),
        reconnect_after_ms: config.server.reconnect_after_ms,
        hooks: plugins.clone(),
        api_listen: config.api.listen,
        admin_token: admin_token.into(),
        plugin_admin: plugins,
        max_upload_bytes: config.api.max_upload_bytes,
        metrics,
        plugin_publisher: Some(publisher),
        api_keys: Arc::new(api_keys),
        max_body_bytes: config.api.max_body_bytes,
        max_batch_messages: config.api.max_batch_messages,
    })
    .await
}

/// Starts the plugin host and loads every active plugin from the store
/// (compiled artifacts come from the disk cache after the first start).
async fn start_plugin_host(
    config: &Config,
    store: Arc<dyn Store>,
    publisher: PluginPublisher,
    metrics: &Metrics,
) -> anyhow::Result<PluginHost> {
    let section = &config.plugins;
    let host_config = HostConfig::new(config.server.data_dir.join("plugin-cache"))
        .max_component_bytes(config.api.max_upload_bytes)
        .default_cpu_budget(Duration::from_millis(section.cpu_budget_ms))
        .wall_deadline(Duration::from_millis(section.wall_deadline_ms))
        .memory_limit_bytes(section.memory_limit_bytes)
        .max_instances(section.max_instances);
    let host = PluginHost::new(
        host_config,
        HostServices {
            store,
            publisher: Arc::new(publisher),
            metrics: metrics.registry.clone(),
        },
    )
    .context("cannot start the plugin host")?;
    let report = host.load_active().await.context("cannot load plugins")?;
    info!(
        loaded = report.loaded,
        failed = report.failed.len(),
        "plugins loaded"
    );
    for (tenant, name, version, error) in &report.failed {
        tracing::warn!(%tenant, plugin = %name, version, %error, "plugin failed to load; its failure policy applies");
    }
    Ok(host)
}
