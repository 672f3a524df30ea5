//! Test support: real gateways on loopback port 0, real QUIC clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_client::{Client, ClientConfig, Reconnect, Trust};
use quiver_server::config::Config;
use quiver_server::setup::{Loaded, OpenStore, bind, open_store};
use quiver_session::Claims;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Limits relaxed so tests can publish quickly; tests of the limits
/// themselves set their own.
pub const FAST: &str = r#"
[limits]
publish_rate_per_sec = 100000
publish_burst = 100000
"#;

pub const ACME_SECRET: &str = "acme-test-secret-0123456789abcdef";
pub const GLOBEX_SECRET: &str = "globex-test-secret-0123456789abcd";

/// Two tenants, for isolation tests.
pub fn two_tenants() -> String {
    format!(
        r#"{FAST}
[[tenants]]
id = "acme"
hs256_secret = "{ACME_SECRET}"

[[tenants]]
id = "globex"
hs256_secret = "{GLOBEX_SECRET}"
"#
    )
}

/// A gateway running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ops: SocketAddr,
    pub api: SocketAddr,
    pub data: Arc<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    secrets: Vec<(String, String)>,
}

impl TestServer {
    /// A server in dev mode extended by `extra` TOML (no tenants: the dev
    /// tenant `demo`), or with the tenants `extra` declares.
    pub async fn start(extra: &str) -> TestServer {
        Self::start_in(Arc::new(TempDir::new().expect("tempdir")), extra).await
    }

    pub async fn start_in(data: Arc<TempDir>, extra: &str) -> TestServer {
        Self::start_on(data, extra, "127.0.0.1:0".parse().expect("addr")).await
    }

    /// Like `start_in`, on a given UDP address (to restart in place).
    pub async fn start_on(data: Arc<TempDir>, extra: &str, listen: SocketAddr) -> TestServer {
        Self::start_with(data, extra, listen, None).await
    }

    /// The general form: `store` replaces the one the config names (to put
    /// a fault-injecting proxy in front of a database).
    pub async fn start_with(
        data: Arc<TempDir>,
        extra: &str,
        listen: SocketAddr,
        store: Option<OpenStore>,
    ) -> TestServer {
        let mut config: Config = toml::from_str(extra).expect("test config");
        config.server.listen = listen;
        config.server.ops_listen = "127.0.0.1:0".parse().expect("addr");
        config.api.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.data_dir = data.path().to_path_buf();
        config.server.shutdown_grace_ms = 2_000;
        let dev = config.tenants.is_empty();
        let mut secrets: Vec<(String, String)> = config
            .tenants
            .iter()
            .filter_map(|t| Some((t.id.clone(), t.hs256_secret.clone()?)))
            .collect();
        if dev {
            let secret = quiver_server::tenants::dev_secret(data.path()).expect("dev secret");
            secrets.push(("demo".into(), String::from_utf8(secret).expect("utf8")));
        }
        let loaded = Loaded {
            config,
            dev,
            base: PathBuf::from("."),
        };
        let store = match store {
            Some(store) => store,
            None => open_store(&loaded.config).await.expect("store"),
        };
        let gateway = bind(&loaded, store.store()).await.expect("bind");
        let addr = gateway.local_addr().expect("addr");
        let ops = gateway.ops_addr().expect("ops addr");
        let api = gateway.api_addr().expect("api addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let result = gateway
                .run(async {
                    let _ = stopped.await;
                })
                .await;
            store.close().await;
            result
        });
        TestServer {
            addr,
            ops,
            api,
            data,
            stop: Some(stop),
            task: Some(task),
            secrets,
        }
    }

    pub fn ca(&self) -> PathBuf {
        quiver_server::tls::dev_cert_path(self.data.path())
    }

    pub fn token(&self, tenant: &str, user: &str) -> String {
        self.token_with(Claims {
            sub: user.into(),
            tenant: tenant.into(),
            exp: now_secs() + 3600,
            nbf: None,
            subscribe: None,
            publish: None,
            track: None,
        })
    }

    pub fn token_with(&self, claims: Claims) -> String {
        let secret = self
            .secrets
            .iter()
            .find(|(t, _)| *t == claims.tenant)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| "unknown-tenant".into());
        claims.sign_hs256(secret.as_bytes()).expect("sign")
    }

    pub fn client_config(&self, tenant: &str, user: &str) -> ClientConfig {
        ClientConfig::new(
            self.addr.to_string(),
            self.token(tenant, user),
            Trust::CaPem(self.ca()),
        )
        .reconnect(Reconnect::disabled())
    }

    pub async fn client(&self, tenant: &str, user: &str) -> Client {
        Client::connect(self.client_config(tenant, user))
            .await
            .expect("connect")
    }

    /// SIGTERM-like graceful stop; waits for the server to finish.
    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    async fn stop_in_place(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server result");
        }
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.ops, path).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A minimal HTTP/1.1 GET, enough for the ops endpoints.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_with(addr, path, None).await
}

/// A minimal HTTP/1.1 GET with an optional bearer token.
pub async fn http_get_with(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Waits until `f` is true, polling; fails the test after `limit`.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real `quiver serve` binary as a child process, as a user runs it.
pub struct ChildServer {
    pub process: tokio::process::Child,
    pub addr: SocketAddr,
    pub api: SocketAddr,
}

impl ChildServer {
    /// Starts `quiver serve` with its data in `dir/data`: in dev mode, or
    /// with `config` written to `dir/quiver.toml`.
    pub async fn spawn(dir: &std::path::Path, config: Option<&str>) -> ChildServer {
        Self::spawn_with_log(dir, config).await.0
    }

    /// Like `spawn`, also returning what the server logged before it
    /// listened.
    pub async fn spawn_with_log(
        dir: &std::path::Path,
        config: Option<&str>,
    ) -> (ChildServer, Vec<String>) {
        use tokio::io::AsyncBufReadExt as _;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"));
        command.arg("serve");
        if let Some(config) = config {
            let path = dir.join("quiver.toml");
            std::fs::write(&path, config).expect("write config");
            command.arg("--config").arg(path);
        }
        let mut process = command
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ops-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
                "--log-json",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn quiver serve");
        let stderr = process.stderr.take().expect("stderr");
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let ((addr, api), log) = tokio::time::timeout(Duration::from_secs(60), async {
            let mut log = Vec::new();
            while let Some(line) = lines.next_line().await.expect("read log") {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                    && let (Some(quic), Some(api)) = (
                        entry["fields"]["quic"].as_str(),
                        entry["fields"]["api"].as_str(),
                    )
                {
                    let quic = quic.parse::<SocketAddr>().expect("quic addr");
                    return ((quic, api.parse::<SocketAddr>().expect("api addr")), log);
                }
                log.push(line);
            }
            panic!("server exited before listening:\n{}", log.join("\n"));
        })
        .await
        .expect("server starts");
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (ChildServer { process, addr, api }, log)
    }
}

/// The value of the sample `name` (with its labels, as exported) in a
/// Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
