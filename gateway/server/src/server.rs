//! The gateway as a whole: binds its listeners, serves until told to stop,
//! then drains. Listeners, store and shutdown signal come from the caller,
//! so tests run servers on port 0 in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use quiver_proto::ALPN;
use quiver_session::{Authenticator, ChannelRules, Limits};
use quiver_storage::{MessageLog, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::api::{self, ApiKeys, ApiState, ChannelsApi, PluginAdmin};
use crate::connection::Shared;
use crate::delivery::DeliveryContext;
use crate::hooks::Hooks;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::ops::{OpsState, router};
use crate::pipeline::{PipelineConfig, PublishPipeline};
use crate::plugins::PluginPublisher;
use crate::presence::Presence;
use crate::quic;
use crate::tracking::Tracker;

/// Everything a gateway needs, already loaded.
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub tls: Arc<rustls::ServerConfig>,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
    /// Channel kinds and options by namespace.
    pub channels: Arc<ChannelRules>,
    /// Messages, positions, plugin key-value data and the plugin registry.
    pub store: Arc<dyn Store>,
    pub channel_buffer: usize,
    pub udp_socket_buffer_bytes: usize,
    pub shutdown_grace: Duration,
    pub reconnect_after_ms: u32,
    /// Tenant plugins.
    pub hooks: Arc<dyn Hooks>,
    /// TCP address of the HTTP API.
    pub api_listen: SocketAddr,
    /// Bearer token of the admin API (never logged).
    pub admin_token: Arc<str>,
    pub plugin_admin: Arc<dyn PluginAdmin>,
    pub max_upload_bytes: usize,
    /// Where the gateway's metrics (and the plugin host's) are registered.
    pub metrics: Metrics,
    /// Plugins' publish capability, connected to the pipeline while the
    /// gateway runs. The HTTP publish API uses the same slot (a private
    /// one when this is `None`).
    pub plugin_publisher: Option<PluginPublisher>,
    /// Tenants' keys of the publish API (never logged).
    pub api_keys: Arc<ApiKeys>,
    /// Largest request body of the publish API.
    pub max_body_bytes: usize,
    /// Most messages in one batch publish.
    pub max_batch_messages: usize,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("listen", &self.listen)
            .field("ops_listen", &self.ops_listen)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A bound, not yet running gateway.
#[derive(Debug)]
pub struct Gateway {
    endpoint: quinn::Endpoint,
    ops: tokio::net::TcpListener,
    api_listener: tokio::net::TcpListener,
    config: GatewayConfig,
    metrics: Metrics,
}

impl Gateway {
    pub async fn bind(config: GatewayConfig) -> anyhow::Result<Self> {
        let server_config = quic::endpoint_config(config.tls.clone(), &config.limits)?;
        let socket = quic::bind_udp(config.listen, config.udp_socket_buffer_bytes)
            .with_context(|| format!("cannot bind UDP {}", config.listen))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .with_context(|| format!("cannot start QUIC on UDP {}", config.listen))?;
        let ops = tokio::net::TcpListener::bind(config.ops_listen)
            .await
            .with_context(|| format!("cannot bind TCP {} for ops", config.ops_listen))?;
        let api_listener = tokio::net::TcpListener::bind(config.api_listen)
            .await
            .with_context(|| format!("cannot bind TCP {} for the HTTP API", config.api_listen))?;
        let metrics = config.metrics.clone();
        Ok(Self {
            endpoint,
            ops,
            api_listener,
            config,
            metrics,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    pub fn ops_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.ops.local_addr()?)
    }

    pub fn api_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.api_listener.local_addr()?)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` completes, then sends GoAway to every client,
    /// waits up to the grace period for them to leave, finishes every
    /// accepted publish and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Gateway {
            endpoint,
            ops,
            api_listener,
            config,
            metrics,
        } = self;
        let hub = Arc::new(Hub::new(config.channel_buffer));
        let log: Arc<dyn MessageLog> = config.store.clone();
        let (pipeline, sequencer) = PublishPipeline::start(
            log.clone(),
            hub.clone(),
            metrics.clone(),
            PipelineConfig::default(),
        );
        let publisher = config.plugin_publisher.clone().unwrap_or_default();
        publisher.attach(Some(pipeline.clone()));
        let (stop, stopped) = watch::channel(false);
        let h3_shutdown = stopped.clone();
        let presence = Arc::new(Presence::default());
        let tracker = Arc::new(Tracker::new(config.store.clone(), metrics.clone()));
        let tracker_task = tokio::spawn(tracker.clone().run_background(stopped.clone()));
        let shared = Arc::new(Shared {
            hooks: config.hooks.clone(),
            auth: config.auth.clone(),
            limits: config.limits.clone(),
            pipeline,
            delivery: DeliveryContext {
                store: log.clone(),
                hub,
                metrics: metrics.clone(),
                presence: presence.clone(),
            },
            shutdown: stopped,
            shutdown_grace: config.shutdown_grace,
            reconnect_after_ms: config.reconnect_after_ms,
            channels: config.channels.clone(),
            tracker: tracker.clone(),
        });
        let shutting_down = Arc::new(AtomicBool::new(false));
        let ops_state = OpsState {
            metrics: metrics.clone(),
            store: log,
            shutting_down: shutting_down.clone(),
        };
        let channels = ChannelsApi {
            keys: config.api_keys.clone(),
            pipeline: publisher.clone(),
            store: ops_state.store.clone(),
            limits: config.limits.clone(),
            max_body_bytes: config.max_body_bytes,
            max_batch_messages: config.max_batch_messages,
            channels: config.channels.clone(),
            presence,
            tracker: tracker.clone(),
        };
        let ops_task = tokio::spawn(async move {
            if let Err(error) = axum::serve(ops, router(ops_state)).await {
                warn!(%error, "ops listener failed");
            }
        });
        let api_state = ApiState {
            admin_token: config.admin_token.clone(),
            plugins: config.plugin_admin.clone(),
            tenants: config.auth.clone(),
            max_upload_bytes: config.max_upload_bytes,
            channels,
        };
        // The same handlers over HTTP/3 on the QUIC port (ALPN h3).
        let h3 = quic::H3App {
            router: api::public_router(api_state.clone()),
            max_body_bytes: config.max_body_bytes,
            shutdown: h3_shutdown,
            grace: config.shutdown_grace,
        };
        let api_task = tokio::spawn(async move {
            if let Err(error) = axum::serve(api_listener, api::router(api_state)).await {
                warn!(%error, "HTTP API listener failed");
            }
        });
        info!(
            listen = %endpoint.local_addr()?,
            alpn = %String::from_utf8_lossy(ALPN),
            http3 = %String::from_utf8_lossy(quic::ALPN_H3),
            "gateway serving"
        );

        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => {
                        connections.spawn(quic::accept(incoming, shared.clone(), h3.clone()));
                    }
                    None => break,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut shutdown => break,
            }
        }

        info!(
            connections = connections.len(),
            "shutting down: sending GoAway"
        );
        shutting_down.store(true, Ordering::Relaxed);
        // Refuse new connections; the ones we have get GoAway and a grace period.
        endpoint.set_server_config(None);
        let _ = stop.send(true);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(config.shutdown_grace + Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!("connections did not close in time; aborting them");
            connections.shutdown().await;
        }
        // The last handles to the pipeline go with `shared` and the
        // publisher slot (plugins, HTTP API); the sequencer then drains what
        // was accepted and exits.
        drop(shared);
        drop(h3);
        publisher.attach(None);
        let _ = sequencer.await;
        // The stop signal made the tracker write its buffered positions.
        let _ = tokio::time::timeout(Duration::from_secs(10), tracker_task).await;
        endpoint.close(
            u32::from(quiver_proto::fb::ErrorCode::GoingAway.0).into(),
            b"shutdown",
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        ops_task.abort();
        api_task.abort();
        info!("gateway stopped");
        Ok(())
    }
}
