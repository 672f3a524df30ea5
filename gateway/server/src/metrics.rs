//! The gateway's Prometheus metrics. One registry per server (nothing
//! global), so tests can run several servers in one process.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Latency buckets from 50 µs to 2.5 s: publish and store latencies sit in
/// the sub-millisecond to few-millisecond range on a healthy node.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// Open client connections (authenticated or still in the handshake).
    pub connections: IntGauge,
    /// Live subscriptions across all connections.
    pub subscriptions: IntGauge,
    /// Messages durably appended (duplicates of an idempotent retry excluded).
    pub published: IntCounter,
    /// Message frames handed to subscriber streams, replays included.
    pub delivered: IntCounter,
    /// Publish received to ack sent.
    pub publish_duration: Histogram,
    /// One store append call (a group of publishes).
    pub store_append_duration: Histogram,
    /// Connections closed by the server for a reason, by error code.
    pub connection_errors: IntCounterVec,
    /// Publishes that failed because the store did.
    pub store_errors: IntCounter,
    /// Positions taken as an entity's newest.
    pub positions_accepted: IntCounter,
    /// Positions not taken, by reason (malformed, forbidden, stale, ...).
    pub positions_dropped: IntCounterVec,
    /// Positions sent to watchers, by `via` (datagram or stream).
    pub positions_delivered: IntCounterVec,
    /// Positions written to the store by the write-behind task.
    pub positions_persisted: IntCounter,
    /// Write-behind flushes that failed (retried at the next interval).
    pub position_store_errors: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let connections = IntGauge::new("quiver_connections", "Open client connections")?;
        let subscriptions =
            IntGauge::new("quiver_subscriptions", "Live subscriptions on this node")?;
        let published = IntCounter::new(
            "quiver_messages_published_total",
            "Messages durably appended to channel logs",
        )?;
        let delivered = IntCounter::new(
            "quiver_messages_delivered_total",
            "Message frames written to subscriber streams",
        )?;
        let publish_duration = Histogram::with_opts(
            HistogramOpts::new(
                "quiver_publish_duration_seconds",
                "Time from a publish frame's arrival to its ack",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let store_append_duration = Histogram::with_opts(
            HistogramOpts::new(
                "quiver_store_append_duration_seconds",
                "Duration of one store append (a group commit of publishes)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let connection_errors = IntCounterVec::new(
            Opts::new(
                "quiver_connection_errors_total",
                "Connections the server closed with an error, by error code",
            ),
            &["code"],
        )?;
        let store_errors = IntCounter::new(
            "quiver_store_errors_total",
            "Store appends that failed (their publishes got StoreUnavailable)",
        )?;
        let positions_accepted = IntCounter::new(
            "quiver_positions_accepted_total",
            "Positions taken as their entity's newest on a tracking channel",
        )?;
        let positions_dropped = IntCounterVec::new(
            Opts::new(
                "quiver_positions_dropped_total",
                "Positions not taken, by reason",
            ),
            &["reason"],
        )?;
        let positions_delivered = IntCounterVec::new(
            Opts::new(
                "quiver_positions_delivered_total",
                "Positions sent to watchers, by transport",
            ),
            &["via"],
        )?;
        let positions_persisted = IntCounter::new(
            "quiver_positions_persisted_total",
            "Positions written to the store by the write-behind task",
        )?;
        let position_store_errors = IntCounter::new(
            "quiver_position_store_errors_total",
            "Write-behind flushes of positions that failed and will be retried",
        )?;
        for reason in [
            "malformed",
            "invalid",
            "forbidden",
            "wrong_channel_kind",
            "rate_limited",
            "plugin",
            "not_ready",
            "stale",
            "history_overflow",
            "inbound_full",
        ] {
            positions_dropped.with_label_values(&[reason]);
        }
        for via in ["datagram", "stream"] {
            positions_delivered.with_label_values(&[via]);
        }
        registry.register(Box::new(positions_accepted.clone()))?;
        registry.register(Box::new(positions_dropped.clone()))?;
        registry.register(Box::new(positions_delivered.clone()))?;
        registry.register(Box::new(positions_persisted.clone()))?;
        registry.register(Box::new(position_store_errors.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(subscriptions.clone()))?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(publish_duration.clone()))?;
        registry.register(Box::new(store_append_duration.clone()))?;
        // Every code starts at 0, so dashboards and alerts see a series (and
        // a rate of 0) before the first error of that kind.
        for &code in quiver_proto::fb::ErrorCode::ENUM_VALUES {
            if code != quiver_proto::fb::ErrorCode::None {
                connection_errors.with_label_values(&[code.variant_name().unwrap_or("Unknown")]);
            }
        }
        registry.register(Box::new(connection_errors.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            connections,
            subscriptions,
            published,
            delivered,
            publish_duration,
            store_append_duration,
            positions_accepted,
            positions_dropped,
            positions_delivered,
            positions_persisted,
            position_store_errors,
            connection_errors,
            store_errors,
        })
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        use prometheus::Encoder as _;
        let mut out = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = encoder.encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
