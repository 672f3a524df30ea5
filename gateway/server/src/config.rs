//! The gateway's file configuration (TOML). Every field has a default, so
//! an empty file is valid; docs/CONFIGURATION.md is the reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use quiver_session::{ChannelKind, ChannelOptions, ChannelRules, LimitOverrides, Limits};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub api: ApiSection,
    pub plugins: PluginsSection,
    pub limits: LimitsSection,
    pub store: StoreSection,
    pub tenants: Vec<TenantSection>,
    /// Channel kinds and options by namespace (the part of a channel name
    /// before its first `:`). Built in: `track` is tracking with presence.
    pub channels: Vec<ChannelsSection>,
}

/// How the channels of one namespace behave.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsSection {
    pub namespace: String,
    /// `messages` (durable log: chat, feeds) or `tracking` (positions).
    #[serde(default = "default_kind")]
    pub kind: ChannelKindName,
    /// Join and leave events for subscribers, and the presence endpoint.
    #[serde(default)]
    pub presence: bool,
    /// Tracking: most positions per entity per second a watcher receives.
    #[serde(default = "default_position_rate")]
    pub max_position_rate: u32,
    /// Tracking: how long stored position history is kept.
    #[serde(default = "default_position_ttl")]
    pub position_history_ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKindName {
    Messages,
    Tracking,
}

fn default_kind() -> ChannelKindName {
    ChannelKindName::Messages
}

fn default_position_rate() -> u32 {
    ChannelOptions::TRACKING.max_position_rate
}

fn default_position_ttl() -> u64 {
    ChannelOptions::TRACKING.position_history_ttl.as_secs()
}

impl Config {
    /// The channel rules: the built-in ones with the configured namespaces
    /// applied.
    pub fn channel_rules(&self) -> anyhow::Result<ChannelRules> {
        let mut rules = ChannelRules::default();
        for section in &self.channels {
            let namespace = section.namespace.as_str();
            if namespace.is_empty() || namespace.contains(':') {
                bail!("channels.namespace {namespace:?} must be non-empty and contain no ':'");
            }
            if section.max_position_rate == 0 {
                bail!("channels.max_position_rate of {namespace:?} must be at least 1");
            }
            let options = ChannelOptions {
                kind: match section.kind {
                    ChannelKindName::Messages => ChannelKind::Messages,
                    ChannelKindName::Tracking => ChannelKind::Tracking,
                },
                presence: section.presence,
                max_position_rate: section.max_position_rate,
                position_history_ttl: std::time::Duration::from_secs(
                    section.position_history_ttl_secs.max(1),
                ),
            };
            rules = rules.with_namespace(namespace, options);
        }
        Ok(rules)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// UDP address of the QUIC endpoint.
    pub listen: SocketAddr,
    /// TCP address of /healthz, /readyz and /metrics.
    pub ops_listen: SocketAddr,
    /// Where the embedded store, the dev certificate and dev secrets live.
    pub data_dir: PathBuf,
    /// PEM certificate chain; with `key`. Absent: a self-signed dev
    /// certificate is generated once under the data dir.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// How long a SIGTERM waits for clients to leave after GoAway.
    pub shutdown_grace_ms: u64,
    /// Delay clients are told to wait before reconnecting after GoAway.
    pub reconnect_after_ms: u32,
    /// Messages each channel's fan-out ring holds; a subscriber further
    /// behind live traffic is disconnected as a slow consumer.
    pub channel_buffer: usize,
    /// Receive and send buffer size asked for the UDP socket. One socket
    /// carries every connection, so the kernel default (~200 KiB) drops
    /// packets under bursts. The kernel caps it at net.core.rmem_max /
    /// wmem_max; the size granted is logged at start.
    pub udp_socket_buffer_bytes: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], quiver_proto::DEFAULT_PORT)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("./data"),
            cert: None,
            key: None,
            shutdown_grace_ms: 10_000,
            reconnect_after_ms: 1_000,
            channel_buffer: 1024,
            udp_socket_buffer_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The HTTP API listener: plugin administration and the server-side
/// publish API (the latter also over HTTP/3 on `server.listen`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// TCP address of the HTTP API.
    pub listen: SocketAddr,
    /// File holding the admin bearer token. Absent: one is created once in
    /// `DATA_DIR/admin.token` (readable by the owner only).
    pub admin_token_file: Option<PathBuf>,
    /// Largest plugin upload accepted; larger ones get 413.
    pub max_upload_bytes: usize,
    /// Largest request body of the publish API; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most messages in one `POST /v1/messages/batch`.
    pub max_batch_messages: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token_file: None,
            max_upload_bytes: 10 * 1024 * 1024,
            max_body_bytes: 1024 * 1024,
            max_batch_messages: 100,
        }
    }
}

/// Limits every plugin call runs under (see docs/PLUGINS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsSection {
    /// CPU time one hook call may burn before it is cut.
    pub cpu_budget_ms: u64,
    /// Wall-clock time one hook call may take, storage waits included.
    pub wall_deadline_ms: u64,
    /// Linear memory one plugin instance may grow to.
    pub memory_limit_bytes: usize,
    /// Plugin instances the process may hold at once (pooled).
    pub max_instances: u32,
}

impl Default for PluginsSection {
    fn default() -> Self {
        let host = quiver_plugin_host::HostConfig::new("unused");
        Self {
            cpu_budget_ms: u64::try_from(host.default_cpu_budget.as_millis()).unwrap_or(u64::MAX),
            wall_deadline_ms: u64::try_from(host.wall_deadline.as_millis()).unwrap_or(u64::MAX),
            memory_limit_bytes: host.memory_limit_bytes,
            max_instances: host.max_instances,
        }
    }
}

/// Server-wide connection limits; see `quiver_session::Limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_frame_bytes: u32,
    pub max_payload_bytes: u32,
    pub max_subscriptions: u32,
    pub publish_rate_per_sec: u32,
    pub publish_burst: u32,
    /// Positions one connection may report per second.
    pub track_rate_per_sec: u32,
    pub max_history_page: u32,
    pub handshake_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub keepalive_interval_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = Limits::default();
        Self {
            max_frame_bytes: d.max_frame_bytes,
            max_payload_bytes: d.max_payload_bytes,
            max_subscriptions: d.max_subscriptions,
            publish_rate_per_sec: d.publish_rate_per_sec,
            publish_burst: d.publish_burst,
            track_rate_per_sec: d.track_rate_per_sec,
            max_history_page: d.max_history_page,
            handshake_timeout_ms: millis(d.handshake_timeout),
            idle_timeout_ms: millis(d.idle_timeout),
            keepalive_interval_ms: millis(d.keepalive_interval),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LimitsSection {
    pub fn to_limits(&self) -> anyhow::Result<Limits> {
        use std::time::Duration;
        // Room for the frame around the largest payload (ids, sender, table
        // offsets), so a stored message always fits a delivery frame.
        if u64::from(self.max_payload_bytes) + 4096 > u64::from(self.max_frame_bytes) {
            bail!("limits.max_payload_bytes must be at least 4096 below limits.max_frame_bytes");
        }
        if self.keepalive_interval_ms >= self.idle_timeout_ms {
            bail!("limits.keepalive_interval_ms must be lower than limits.idle_timeout_ms");
        }
        Ok(Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_payload_bytes: self.max_payload_bytes,
            max_subscriptions: self.max_subscriptions,
            publish_rate_per_sec: self.publish_rate_per_sec,
            publish_burst: self.publish_burst,
            track_rate_per_sec: self.track_rate_per_sec.max(1),
            max_history_page: self.max_history_page.max(1),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            keepalive_interval: Duration::from_millis(self.keepalive_interval_ms),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `embedded` (the default: fjall under data_dir/store), or
    /// `scylla://host1:9042,host2:9042/keyspace[?options]` for a ScyllaDB
    /// (or Cassandra) cluster shared by several gateway nodes.
    pub url: String,
    /// How long idempotency keys are remembered.
    pub idempotency_window_secs: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: "embedded".into(),
            idempotency_window_secs: 24 * 3600,
        }
    }
}

/// One tenant: who may connect and with what keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub id: String,
    /// HS256 shared secret, inline. Prefer `hs256_secret_file`.
    #[serde(default)]
    pub hs256_secret: Option<String>,
    /// File holding the HS256 secret (trailing whitespace ignored).
    #[serde(default)]
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public keys for RS256 tokens.
    #[serde(default)]
    pub rs256_public_keys: Vec<PathBuf>,
    /// PEM public keys for EdDSA (Ed25519) tokens.
    #[serde(default)]
    pub eddsa_public_keys: Vec<PathBuf>,
    /// Keys of the publish API, inline. Prefer `api_key_files`.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Files each holding one key of the publish API.
    #[serde(default)]
    pub api_key_files: Vec<PathBuf>,
    #[serde(default)]
    pub limits: TenantLimits,
}

impl std::fmt::Debug for TenantSection {
    // The inline secret must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSection")
            .field("id", &self.id)
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("hs256_secret_file", &self.hs256_secret_file)
            .field("rs256_public_keys", &self.rs256_public_keys)
            .field("eddsa_public_keys", &self.eddsa_public_keys)
            .field(
                "api_keys",
                &format_args!("<{} redacted>", self.api_keys.len()),
            )
            .field("api_key_files", &self.api_key_files)
            .field("limits", &self.limits)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    pub max_payload_bytes: Option<u32>,
    pub max_subscriptions: Option<u32>,
    pub publish_rate_per_sec: Option<u32>,
    pub publish_burst: Option<u32>,
}

impl From<&TenantLimits> for LimitOverrides {
    fn from(l: &TenantLimits) -> Self {
        LimitOverrides {
            max_payload_bytes: l.max_payload_bytes,
            max_subscriptions: l.max_subscriptions,
            publish_rate_per_sec: l.publish_rate_per_sec,
            publish_burst: l.publish_burst,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_in_deploy_is_valid() {
        let text = include_str!("../../../deploy/quiver.example.toml");
        let config: Config = toml::from_str(text).expect("deploy/quiver.example.toml parses");
        assert!(config.limits.to_limits().is_ok());
        assert_eq!(config.tenants.len(), 1);
        assert_eq!(config.tenants[0].limits.max_subscriptions, Some(256));
    }

    #[test]
    fn inline_secrets_never_reach_debug_output() {
        let config: Config = toml::from_str(
            "[[tenants]]\nid = \"a\"\nhs256_secret = \"hunter2-hunter2\"\napi_keys = [\"hunter3-api-key-0123\"]\n",
        )
        .expect("parses");
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("hunter3"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[server]\nlisten_addr = \"x\"\n").is_err());
    }

    #[test]
    fn channel_namespaces() {
        let config: Config = toml::from_str(
            "[[channels]]\nnamespace = \"room\"\npresence = true\n\n\
             [[channels]]\nnamespace = \"fleet\"\nkind = \"tracking\"\nmax_position_rate = 3\n",
        )
        .expect("valid");
        let rules = config.channel_rules().expect("rules");
        assert!(rules.options("room:1").presence);
        assert!(!rules.options("room:1").is_tracking());
        assert!(rules.options("fleet:1").is_tracking());
        assert_eq!(rules.options("fleet:1").max_position_rate, 3);
        assert!(rules.options("track:1").is_tracking());
        assert!(!rules.options("chat:1").presence);
        for bad in [
            "[[channels]]\nnamespace = \"a:b\"\n",
            "[[channels]]\nnamespace = \"\"\n",
            "[[channels]]\nnamespace = \"x\"\nkind = \"tracking\"\nmax_position_rate = 0\n",
        ] {
            let config: Config = toml::from_str(bad).expect("parses");
            assert!(config.channel_rules().is_err(), "{bad}");
        }
        assert!(
            toml::from_str::<Config>("[[channels]]\nnamespace = \"x\"\nkind = \"video\"\n")
                .is_err()
        );
    }

    #[test]
    fn defaults_are_consistent() {
        let limits = Config::default()
            .limits
            .to_limits()
            .expect("defaults are valid");
        assert_eq!(limits, Limits::default());
    }
}
