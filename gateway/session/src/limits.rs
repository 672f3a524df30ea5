use std::time::Duration;

/// What one connection may do. The server config sets defaults and each
/// tenant may override them; the effective values are sent to the client in
/// `Welcome` so well-behaved clients never hit them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted on any stream, prefix excluded. Bounds the
    /// memory one read can pin. Default 1 MiB.
    pub max_frame_bytes: u32,
    /// Largest payload plus headers of one publish. Default 64 KiB.
    pub max_payload_bytes: u32,
    /// Subscriptions one connection may hold at once. Each costs a stream
    /// and a delivery task, so this bounds per-connection memory. Default 128.
    pub max_subscriptions: u32,
    /// Sustained publishes per second per connection (token bucket refill).
    /// Default 100.
    pub publish_rate_per_sec: u32,
    /// Publishes a connection may burst above the sustained rate. Default 200.
    pub publish_burst: u32,
    /// Positions one connection may report per second (more are dropped
    /// and counted). Default 50.
    pub track_rate_per_sec: u32,
    /// Largest history page the server returns. Default 1000.
    pub max_history_page: u32,
    /// Time a new connection has to send a valid Hello. Default 10 s.
    pub handshake_timeout: Duration,
    /// Connections silent for this long are closed. Default 60 s.
    pub idle_timeout: Duration,
    /// How often clients should send keep-alives. Must be well under
    /// `idle_timeout` and under typical UDP NAT timeouts (~30 s). Default 25 s.
    pub keepalive_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1024 * 1024,
            max_payload_bytes: 64 * 1024,
            max_subscriptions: 128,
            publish_rate_per_sec: 100,
            publish_burst: 200,
            track_rate_per_sec: 50,
            max_history_page: 1000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(25),
        }
    }
}

/// Per-tenant overrides of [`Limits`]; `None` keeps the server default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub max_payload_bytes: Option<u32>,
    pub max_subscriptions: Option<u32>,
    pub publish_rate_per_sec: Option<u32>,
    pub publish_burst: Option<u32>,
}

impl Limits {
    /// The limits for a tenant: these defaults with its overrides applied.
    pub fn with_overrides(&self, overrides: &LimitOverrides) -> Limits {
        let mut limits = self.clone();
        if let Some(v) = overrides.max_payload_bytes {
            limits.max_payload_bytes = v.min(limits.max_frame_bytes);
        }
        if let Some(v) = overrides.max_subscriptions {
            limits.max_subscriptions = v;
        }
        if let Some(v) = overrides.publish_rate_per_sec {
            limits.publish_rate_per_sec = v;
        }
        if let Some(v) = overrides.publish_burst {
            limits.publish_burst = v;
        }
        limits
    }
}
