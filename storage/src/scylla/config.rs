use std::net::SocketAddr;
use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};

use crate::StoreError;

/// Configuration of [`ScyllaStore`](super::ScyllaStore).
///
/// Build it with [`ScyllaConfig::new`] or [`ScyllaConfig::from_url`] and
/// adjust it with the chainable setters; each field documents its default.
///
/// ```
/// use quiver_storage::scylla::ScyllaConfig;
///
/// let config = ScyllaConfig::from_url("scylla://10.0.0.1:9042,10.0.0.2/quiver?node_id=gw-1")
///     .unwrap()
///     .max_in_flight(512);
/// assert_eq!(config.nodes, ["10.0.0.1:9042", "10.0.0.2:9042"]);
/// assert_eq!((config.keyspace.as_str(), config.node_id.as_str()), ("quiver", "gw-1"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScyllaConfig {
    /// Contact points, `host:port`. The driver discovers the rest of the
    /// cluster from them. No default.
    pub nodes: Vec<String>,
    /// Keyspace of every table; created on connect if missing. No default.
    pub keyspace: String,
    /// The keyspace's replication map, as CQL, used only when the keyspace is
    /// created. Default: `{'class': 'SimpleStrategy', 'replication_factor':
    /// 1}`, for a single test node; production uses NetworkTopologyStrategy
    /// with 3 replicas per datacenter (see `deploy/scylla/README.md`).
    pub replication: String,
    /// Consistency of reads and writes. Default: LOCAL_QUORUM, so a read sees
    /// every acknowledged write while a minority of replicas is down.
    pub consistency: Consistency,
    /// Consistency of the Paxos round of lightweight transactions (leases,
    /// increments, plugin numbering). Default: LOCAL_SERIAL.
    pub serial_consistency: SerialConsistency,
    /// Client-side limit on one request, retries included. Default: 5 s.
    pub request_timeout: Duration,
    /// Database requests this store has outstanding at once. Further calls
    /// wait for a slot up to `request_timeout`, then fail with
    /// `Unavailable`: publishers get backpressure, not an unbounded queue.
    /// Default: 256.
    pub max_in_flight: usize,
    /// This gateway node's name in channel leases. Must be unique among the
    /// nodes sharing the keyspace. Default: the host name, or `quiver`.
    pub node_id: String,
    /// How long a channel lease lasts without renewal. The owner renews it
    /// when half of it is left. A channel whose owner died can be taken over
    /// after this. Default: 10 s.
    pub lease_ttl: Duration,
    /// Allowance for clock differences between gateway nodes: an owner stops
    /// writing this long before its lease ends, and a new owner waits this
    /// long after it ends. Default: 1 s.
    pub clock_margin: Duration,
    /// How long an idempotency key is remembered (a CQL TTL). Default: 24 h.
    pub idempotency_window: Duration,
    /// Messages expire after this (a CQL TTL), or never when `None`.
    /// Default: `None`.
    pub message_ttl: Option<Duration>,
    /// Soft limit on messages per group write of one channel. Default: 512.
    pub max_batch: usize,
    /// Rewrites the addresses the cluster advertises for its nodes, for
    /// when the gateway reaches them through NAT or port forwarding (and in
    /// tests, through a fault-injecting proxy). Unlisted addresses are used
    /// as advertised. Default: empty.
    pub address_map: Vec<(SocketAddr, SocketAddr)>,
}

impl ScyllaConfig {
    /// A configuration with every default, for `nodes` and `keyspace`.
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> Self {
        Self {
            nodes,
            keyspace: keyspace.into(),
            replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(5),
            max_in_flight: 256,
            node_id: default_node_id(),
            lease_ttl: Duration::from_secs(10),
            clock_margin: Duration::from_secs(1),
            idempotency_window: Duration::from_secs(24 * 60 * 60),
            message_ttl: None,
            max_batch: 512,
            address_map: Vec::new(),
        }
    }

    /// Sets [`replication`](Self::replication).
    pub fn replication(mut self, replication: impl Into<String>) -> Self {
        self.replication = replication.into();
        self
    }

    /// Sets [`consistency`](Self::consistency).
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight).
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// Sets [`node_id`](Self::node_id).
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = id.into();
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl) and [`clock_margin`](Self::clock_margin).
    pub fn lease(mut self, ttl: Duration, clock_margin: Duration) -> Self {
        self.lease_ttl = ttl;
        self.clock_margin = clock_margin;
        self
    }

    /// Sets [`idempotency_window`](Self::idempotency_window).
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Sets [`message_ttl`](Self::message_ttl).
    pub fn message_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.message_ttl = ttl;
        self
    }

    /// Adds a rule to [`address_map`](Self::address_map).
    pub fn map_address(mut self, advertised: SocketAddr, reach_at: SocketAddr) -> Self {
        self.address_map.push((advertised, reach_at));
        self
    }

    /// Sets [`max_batch`](Self::max_batch).
    pub fn max_batch(mut self, messages: usize) -> Self {
        self.max_batch = messages;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let bad = |why: &str| StoreError::Invalid(format!("scylla store config: {why}"));
        validate_keyspace(&self.keyspace).map_err(|e| bad(&e))?;
        if self.nodes.is_empty() {
            return Err(bad("nodes is empty"));
        }
        if self.max_in_flight == 0 || self.max_batch == 0 {
            return Err(bad("max_in_flight and max_batch must be at least 1"));
        }
        if self.node_id.is_empty() || self.node_id.contains('/') {
            return Err(bad("node_id must be non-empty and without '/'"));
        }
        if self.lease_ttl <= self.clock_margin * 3 {
            return Err(bad("lease_ttl must be more than 3 x clock_margin"));
        }
        if !self.replication.trim_start().starts_with('{') {
            return Err(bad("replication must be a CQL map, e.g. {'class': ...}"));
        }
        Ok(())
    }
}

/// Keyspace names go into CQL text (statements cannot bind them), so only
/// the characters CQL allows unquoted are accepted.
pub(super) fn validate_keyspace(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "keyspace {name:?} must be 1-48 of [A-Za-z0-9_], starting with a letter"
        ))
    }
}

fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "quiver".into())
}
