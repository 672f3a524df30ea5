//! Starting the servers a bench compares: `quiver serve` with a temporary
//! data dir and a config with publish limits lifted (like bench-core.sh),
//! and `quiver-load floor` with the gateway's own certificate and key.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The bench tenant.
pub const TENANT: &str = "bench";

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    pub pid: u32,
    /// QUIC address, host:port.
    pub server: String,
    /// Ops listener, host:port (/healthz, /metrics).
    pub ops: String,
    /// The dev certificate and key it generated.
    pub cert: PathBuf,
    pub key: PathBuf,
    pub secret: String,
    /// The config it runs with (secret redacted), for reports.
    pub config: String,
    _dir: tempfile::TempDir,
}

/// A free port on loopback right now (the OS may reuse it, rarely).
fn free_udp() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_tcp() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Gateway {
    /// Starts `quiver serve` and waits for /healthz (and the certificate).
    pub async fn start(quiver: &Path, store: Option<&str>, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(quiver, store, &[], log).await
    }

    /// Like [`Gateway::start`], with more `[limits]` settings (`key`,
    /// value), such as `track_rate_per_sec` for the tracking bench.
    pub async fn start_with(
        quiver: &Path,
        store: Option<&str>,
        limits: &[(&str, u64)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("quiver-load-bench.")
            .tempdir()
            .context("cannot make a temp dir")?;
        let data = dir.path().join("data");
        let (quic, ops, api) = (free_udp()?, free_tcp()?, free_tcp()?);
        let secret = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let store_line = store.map_or(String::new(), |url| format!("\n[store]\nurl = \"{url}\"\n"));
        let limit_lines: String = limits
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{quic}\"\nops_listen = \"127.0.0.1:{ops}\"\n\
             data_dir = \"{}\"\n\n[api]\nlisten = \"127.0.0.1:{api}\"\n\n\
             [limits]\npublish_rate_per_sec = 1000000\npublish_burst = 1000000\n{limit_lines}{store_line}\n\
             [[tenants]]\nid = \"{TENANT}\"\nhs256_secret = \"{secret}\"\n",
            data.display()
        );
        let path = dir.path().join("quiver.toml");
        std::fs::write(&path, &config)?;
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(quiver)
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}; build it with cargo build --release -p quiver-server or pass --quiver", quiver.display()))?;
        let pid = child.id().context("quiver exited at once")?;
        let mut gateway = Self {
            child,
            pid,
            server: format!("127.0.0.1:{quic}"),
            ops: format!("127.0.0.1:{ops}"),
            cert: data.join("tls").join("dev-cert.pem"),
            key: data.join("tls").join("dev-key.pem"),
            secret: secret.clone(),
            config: config.replace(&secret, "<random>"),
            _dir: dir,
        };
        // A CQL store may take a while (schema); embedded starts in < 1 s.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = gateway.child.try_wait()? {
                bail!("quiver serve exited with {status}; see {}", log.display());
            }
            if gateway.cert.exists() && healthy(&gateway.ops).await {
                return Ok(gateway);
            }
            if Instant::now() > deadline {
                bail!(
                    "quiver serve did not become healthy in 120 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn healthy(ops: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(ops)).await
    else {
        return false;
    };
    let request = format!("GET /healthz HTTP/1.0\r\nHost: {ops}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut response)).await;
    response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
}

/// A running `quiver-load floor`.
#[derive(Debug)]
pub struct Floor {
    child: Child,
    pub pid: u32,
    pub server: String,
}

impl Floor {
    /// Starts this binary's `floor` command with the given certificate.
    pub async fn start(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let mut child = Command::new(exe)
            .args(["floor", "--listen", "127.0.0.1:0", "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the floor")?;
        let pid = child.id().context("the floor exited at once")?;
        let stdout = child.stdout.take().context("no floor stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the floor did not start in 10 s")??
            .context("the floor exited before listening")?;
        let server = line
            .strip_prefix("floor listening on ")
            .with_context(|| format!("unexpected floor output: {line}"))?
            .to_owned();
        Ok(Self { child, pid, server })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
