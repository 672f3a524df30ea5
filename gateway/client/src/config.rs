//! Typed client configuration with documented defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ClientError;
use crate::tls::{Trust, quic_client_config};

/// Everything [`Client::connect`](crate::Client::connect) needs.
///
/// Built with [`ClientConfig::new`] plus chainable setters; every default is
/// stated on its setter.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` of the gateway; the host part is also the TLS server name.
    pub(crate) server: String,
    /// The JWT sent in Hello; re-sent on every reconnect.
    pub(crate) token: String,
    /// How to verify the server certificate.
    pub(crate) trust: Trust,
    /// Free-form name and version sent in Hello, so server logs can tell
    /// clients apart.
    pub(crate) client_name: String,
    /// What to do when the connection drops.
    pub(crate) reconnect: Reconnect,
    /// QUIC keep-alive period; keeps NAT bindings and the server's idle timer
    /// alive while nothing else is sent.
    pub(crate) keepalive: Duration,
    /// QUIC idle timeout: how long a silent path is tolerated before the
    /// connection is declared lost (and a reconnect starts).
    pub(crate) idle_timeout: Duration,
    /// Local UDP address; `None` picks the wildcard of the server's family.
    pub(crate) bind: Option<SocketAddr>,
    /// Bound on one connection attempt: UDP handshake, TLS and Hello/Welcome.
    pub(crate) connect_timeout: Duration,
    /// Bound on waiting for one request's response, reconnects included.
    pub(crate) request_timeout: Duration,
    /// Messages buffered per subscription before the client stops reading
    /// that subscription's stream (QUIC flow control then slows the server).
    pub(crate) subscription_buffer: usize,
    /// Requests that may await a response at once; more callers wait, which
    /// bounds the client's memory when the server is slow.
    pub(crate) max_in_flight: usize,
    /// Streams the server may open at once; one per subscription.
    pub(crate) max_subscriptions: u32,
    /// A prebuilt QUIC config (shared by many clients in load tests) that
    /// replaces the one built from `trust` and the transport settings.
    pub(crate) quic: Option<quinn::ClientConfig>,
}

/// Automatic reconnect policy.
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Reconnect after connection loss, GoAway or a fatal SlowConsumer.
    /// Default: true.
    pub enabled: bool,
    /// Delay before the first retry; doubles each failed attempt. Default: 100 ms.
    pub initial_backoff: Duration,
    /// Cap on the delay between attempts. Default: 10 s.
    pub max_backoff: Duration,
    /// Failed attempts in a row before giving up; `None` retries forever.
    /// Default: None.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// A policy that never reconnects: the first connection loss ends the
    /// client and surfaces to every waiter.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

impl ClientConfig {
    /// A config for `server` (`host:port`, IP literals allowed, IPv6 in
    /// brackets) authenticating with `token`.
    pub fn new(server: impl Into<String>, token: impl Into<String>, trust: Trust) -> Self {
        Self {
            server: server.into(),
            token: token.into(),
            trust,
            client_name: concat!("quiver-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            reconnect: Reconnect::default(),
            keepalive: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            bind: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            subscription_buffer: 256,
            max_in_flight: 1024,
            max_subscriptions: 1024,
            quic: None,
        }
    }

    /// Client name sent in Hello. Default: `quiver-client/<version>`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Reconnect policy. Default: [`Reconnect::default`].
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// QUIC keep-alive interval. Default: 25 s.
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// QUIC idle timeout. Default: 60 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Local UDP address to bind. Default: `0.0.0.0:0` or `[::]:0`, matching
    /// the server address family. Ignored by `connect_with_endpoint`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = Some(addr);
        self
    }

    /// Bound on one connection attempt (QUIC + TLS + Hello/Welcome).
    /// Default: 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on waiting for a response, including time spent reconnecting.
    /// Default: 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Messages buffered per subscription. Default: 256 (minimum 1).
    pub fn subscription_buffer(mut self, messages: usize) -> Self {
        self.subscription_buffer = messages.max(1);
        self
    }

    /// Requests awaiting a response at once. Default: 1024 (minimum 1).
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Subscription streams the server may have open at once. Default: 1024.
    pub fn max_subscriptions(mut self, subscriptions: u32) -> Self {
        self.max_subscriptions = subscriptions;
        self
    }

    /// Use this QUIC config's TLS setup instead of building one from the
    /// trust setting, so thousands of load-test clients share one TLS
    /// config. This config's keep-alive, idle timeout and stream limit still
    /// apply. Default: built by [`quic_client_config`].
    pub fn with_quic_config(mut self, quic: quinn::ClientConfig) -> Self {
        self.quic = Some(quic);
        self
    }

    /// The server address as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The QUIC config this client connects with: the override if set, else
    /// [`quic_client_config`], with this config's keep-alive, idle timeout
    /// and stream limit either way.
    pub fn quic_config(&self) -> Result<quinn::ClientConfig, ClientError> {
        let mut quic = match &self.quic {
            Some(quic) => quic.clone(),
            None => quic_client_config(&self.trust)?,
        };
        let mut transport = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout).map_err(|_| {
            ClientError::InvalidConfig(format!(
                "idle_timeout {:?} is too large for QUIC; use at most a few hours",
                self.idle_timeout
            ))
        })?;
        transport
            .max_idle_timeout(Some(idle))
            .keep_alive_interval((!self.keepalive.is_zero()).then_some(self.keepalive))
            .max_concurrent_uni_streams(self.max_subscriptions.into())
            // The client never accepts bidirectional streams.
            .max_concurrent_bidi_streams(0u8.into());
        quic.transport_config(Arc::new(transport));
        Ok(quic)
    }
}
