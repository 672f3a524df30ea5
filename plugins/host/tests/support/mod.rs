//! Test support: builds the example plugins once per test process, and
//! sets up a host over a real embedded store in a temporary directory.

#![allow(dead_code, unreachable_pub)]

pub mod build;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use quiver_plugin_host::{
    ChannelPublisher, HostConfig, HostServices, PluginHost, PublishVerdict, SessionInfo,
};
use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};

pub use build::wasm;

/// One publish a plugin made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub tenant: String,
    pub channel: String,
    pub payload: Bytes,
    pub headers: Vec<(String, String)>,
}

/// Records publishes instead of appending them.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    pub published: Mutex<Vec<Published>>,
}

impl ChannelPublisher for RecordingPublisher {
    fn publish(
        &self,
        tenant: &str,
        channel: &str,
        payload: Bytes,
        headers: Vec<(String, String)>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        let mut published = self.published.lock().unwrap();
        published.push(Published {
            tenant: tenant.into(),
            channel: channel.into(),
            payload,
            headers,
        });
        let offset = published.len() as u64;
        Box::pin(async move { Ok(offset) })
    }
}

/// A host, its store and its publisher, all in a temporary directory.
pub struct Harness {
    pub host: PluginHost,
    pub store: Arc<EmbeddedStore>,
    pub publisher: Arc<RecordingPublisher>,
    pub registry: prometheus::Registry,
    pub dir: Arc<tempfile::TempDir>,
}

/// The config tests use: few instance slots (tests run several hosts in
/// one process) and a short deadline so failures are quick.
pub fn test_config(dir: &std::path::Path) -> HostConfig {
    HostConfig::new(dir.join("cache"))
        .max_instances(64)
        .wall_deadline(Duration::from_millis(500))
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_config(|c| c).await
    }

    pub async fn with_config(adjust: impl FnOnce(HostConfig) -> HostConfig) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::open(dir, adjust).await
    }

    /// A host over the store and cache in `dir` (reopening them if a
    /// previous harness used the same directory).
    pub async fn open(
        dir: Arc<tempfile::TempDir>,
        adjust: impl FnOnce(HostConfig) -> HostConfig,
    ) -> Self {
        let path = dir.path().join("store");
        let store =
            tokio::task::spawn_blocking(move || EmbeddedStore::open(EmbeddedConfig::new(path)))
                .await
                .unwrap()
                .expect("open embedded store");
        let store = Arc::new(store);
        let publisher = Arc::new(RecordingPublisher::default());
        let registry = prometheus::Registry::new();
        let services = HostServices {
            store: store.clone(),
            publisher: publisher.clone(),
            metrics: registry.clone(),
        };
        let host = PluginHost::new(adjust(test_config(dir.path())), services).expect("plugin host");
        Harness {
            host,
            store,
            publisher,
            registry,
            dir,
        }
    }

    /// Uploads example `name` for `tenant` under `plugin`, panicking on error.
    pub async fn install(
        &self,
        tenant: &str,
        plugin: &str,
        example: &str,
        config: Option<&str>,
    ) -> u32 {
        self.host
            .upload(tenant, plugin, wasm(example), config)
            .await
            .unwrap_or_else(|e| panic!("upload of {example} failed: {e}"))
            .version
    }

    /// Uploads the `enricher` example, configured to put the sender in
    /// the header `sender_header` (which tells versions apart).
    pub async fn install_enricher(&self, tenant: &str, plugin: &str, sender_header: &str) -> u32 {
        let config = format!(r#"{{"sender_header": "{sender_header}"}}"#);
        self.install(tenant, plugin, "enricher", Some(&config))
            .await
    }

    /// Runs the `on-publish` chain on `payload`, without headers.
    pub async fn publish(
        &self,
        session: &SessionInfo,
        channel: &str,
        payload: &'static [u8],
    ) -> PublishVerdict {
        self.host
            .on_publish(session, channel, Bytes::from_static(payload), Vec::new())
            .await
    }

    /// The value of a metric sample with these labels, or 0.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        for family in self.registry.gather() {
            if family.name() != name {
                continue;
            }
            for m in family.get_metric() {
                let matches = labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                });
                if matches {
                    return match family.get_field_type() {
                        prometheus::proto::MetricType::HISTOGRAM => {
                            m.get_histogram().get_sample_count() as f64
                        }
                        _ => m.get_counter().get_value(),
                    };
                }
            }
        }
        0.0
    }
}

pub fn session(tenant: &str, user: &str) -> SessionInfo {
    SessionInfo {
        tenant: tenant.into(),
        user: user.into(),
        session_id: format!("s-{user}").into(),
        client: "test/1.0".into(),
    }
}
