//! Many clients over a few UDP sockets.
//!
//! A real fleet of phones has one socket per phone, but one process cannot
//! open thousands of sockets cheaply, and a single socket would make its
//! one quinn endpoint driver the bottleneck of the whole generator. So the
//! clients are spread round-robin over `--sockets` endpoints, each endpoint
//! shared through [`Client::connect_with_endpoint`], and all of them share
//! one TLS/QUIC config instead of building a root store per client.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use quiver_client::{Client, ClientConfig, Reconnect, Trust, quic_client_config};

use crate::stats::Latency;

/// Socket buffer asked for on each client socket. Linux caps it at
/// `net.core.rmem_max`/`wmem_max`; the 208 KiB default overflows (and so
/// drops packets) when dozens of connections share a socket at full rate.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// QUIC idle timeout of load clients: a stalled server shows up as errors
/// within the run instead of after it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alives well inside the idle timeout, so quiet subscribers of a
/// low-rate run are not dropped.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// How long closing waits for the close frames to leave the sockets.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// The UDP endpoints and the shared QUIC config clients connect with.
#[derive(Debug)]
pub struct Pool {
    server: String,
    endpoints: Vec<quinn::Endpoint>,
    /// Kept for the client configs; the shared `quic` config already
    /// embodies it.
    trust: Trust,
    quic: quinn::ClientConfig,
}

/// What a batch of connects produced, in index order, and how long it took.
#[derive(Debug)]
pub struct Connected<T> {
    pub items: Vec<T>,
    /// Per-item time of the caller's connect step (QUIC + TLS +
    /// Hello/Welcome, plus whatever else the step does, such as subscribe).
    pub latency: Latency,
    /// Wall time of the whole batch.
    pub elapsed: Duration,
}

impl Pool {
    /// Opens `sockets` UDP endpoints of the server's address family.
    pub async fn new(server: &str, trust: Trust, sockets: usize) -> anyhow::Result<Self> {
        let remote = tokio::net::lookup_host(server)
            .await
            .with_context(|| format!("cannot resolve {server}; use host:port"))?
            .next()
            .with_context(|| format!("{server} resolves to no address"))?;
        let bind: SocketAddr = if remote.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoints = (0..sockets.max(1))
            .map(|_| endpoint(bind))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            server: server.to_owned(),
            endpoints,
            quic: quic_config(&trust)?,
            trust,
        })
    }

    /// The config of one client: its own token and name, the shared QUIC
    /// config, and the default reconnect policy, so a subscriber cut off as
    /// a slow consumer resumes (and the gap check still covers it).
    pub fn client_config(&self, token: String, name: &str) -> ClientConfig {
        ClientConfig::new(self.server.clone(), token, self.trust.clone())
            .client_name(name)
            .with_quic_config(self.quic.clone())
            // The client applies its own transport settings on top of the
            // shared QUIC config, so they are set here.
            .keepalive(KEEPALIVE)
            .idle_timeout(IDLE_TIMEOUT)
            .reconnect(Reconnect::default())
    }

    /// Connects client number `index` on socket `index % sockets`.
    pub async fn connect(&self, index: usize, config: ClientConfig) -> anyhow::Result<Client> {
        let endpoint = self.endpoints[index % self.endpoints.len()].clone();
        match Client::connect_with_endpoint(endpoint, config).await {
            Ok(client) => Ok(client),
            // The token came from our flags, not from a backend: say which.
            Err(error) if error.is_auth_failure() => Err(anyhow::Error::new(error).context(
                format!(
                    "client {index} was refused by {}; check --tenant and --secret (or --data-dir) against the server's config",
                    self.server
                ),
            )),
            Err(error) => Err(anyhow::Error::new(error)
                .context(format!("client {index} cannot connect to {}", self.server))),
        }
    }

    /// Closes every client (QUIC code 0, so the server frees their state at
    /// once) and waits briefly for the close frames to be sent.
    pub async fn close(&self, clients: &[Client]) {
        futures::future::join_all(clients.iter().map(Client::close)).await;
        let idle = futures::future::join_all(self.endpoints.iter().map(quinn::Endpoint::wait_idle));
        let _ = tokio::time::timeout(CLOSE_LINGER, idle).await;
    }
}

/// Runs `connect(i)` for `i in 0..count`, at most `concurrency` at once (a
/// burst of thousands of handshakes would measure the server's accept queue
/// rather than anything useful), and fails on the first error: a run with
/// missing clients would report wrong figures.
pub async fn connect_all<T, F, Fut>(
    count: usize,
    concurrency: usize,
    connect: F,
) -> anyhow::Result<Connected<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut attempts = futures::stream::iter(0..count)
        .map(|index| {
            let attempt = connect(index);
            async move {
                let t0 = Instant::now();
                attempt.await.map(|value| (index, value, t0.elapsed()))
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut latency = Latency::new();
    while let Some(result) = attempts.next().await {
        let (index, value, took) = result?;
        latency.record(took);
        slots[index] = Some(value);
    }
    let items: Vec<T> = slots.into_iter().flatten().collect();
    if items.len() != count {
        bail!("only {} of {count} clients connected", items.len());
    }
    Ok(Connected {
        items,
        latency,
        elapsed: started.elapsed(),
    })
}

/// One client endpoint with enlarged socket buffers.
fn endpoint(bind: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let socket = UdpSocket::bind(bind).with_context(|| format!("cannot bind UDP {bind}"))?;
    grow_buffers(&socket);
    let runtime = quinn::default_runtime().context("quinn found no async runtime")?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .context("cannot start a quinn endpoint")
}

/// Best effort: a smaller buffer only means more loss under load, which
/// the latency figures then show.
fn grow_buffers(socket: &UdpSocket) {
    let state = match quinn::udp::UdpSocketState::new(socket.into()) {
        Ok(state) => state,
        Err(error) => {
            tracing::debug!(%error, "cannot inspect the UDP socket");
            return;
        }
    };
    if let Err(error) = state.set_recv_buffer_size(socket.into(), SOCKET_BUFFER) {
        tracing::debug!(%error, "cannot grow the UDP receive buffer");
    }
    if let Err(error) = state.set_send_buffer_size(socket.into(), SOCKET_BUFFER) {
        tracing::debug!(%error, "cannot grow the UDP send buffer");
    }
}

/// The QUIC config every load client shares: only its TLS part counts,
/// because `ClientConfig::quic_config` replaces the transport settings with
/// the client's own (keep-alive, idle timeout, stream limit).
fn quic_config(trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
    quic_client_config(trust).context("cannot build the TLS config")
}
