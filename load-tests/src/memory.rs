//! The server's resident memory: from `/proc/PID/status` (VmRSS) when the
//! server runs on this machine and its pid is known, or from the gateway's
//! Prometheus `/metrics` (`process_resident_memory_bytes`) otherwise.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::live::Live;

/// Where to read the server's memory from.
#[derive(Debug, Clone)]
pub enum RssSource {
    Pid(u32),
    /// `host:port` of the ops listener, plus the path (`/metrics`).
    Metrics {
        addr: String,
        path: String,
    },
}

impl RssSource {
    /// From the flags: `--server-pid` wins over `--metrics`.
    pub fn from_flags(pid: Option<u32>, metrics: Option<&str>) -> anyhow::Result<Option<Self>> {
        if let Some(pid) = pid {
            return Ok(Some(RssSource::Pid(pid)));
        }
        let Some(url) = metrics else {
            return Ok(None);
        };
        let rest = url.strip_prefix("http://").with_context(|| {
            format!("--metrics {url}: use http://HOST:PORT/metrics (the gateway's ops listener)")
        })?;
        let (addr, path) = match rest.split_once('/') {
            Some((addr, path)) => (addr.to_owned(), format!("/{path}")),
            None => (rest.to_owned(), "/metrics".to_owned()),
        };
        Ok(Some(RssSource::Metrics { addr, path }))
    }

    /// Resident bytes now.
    pub async fn read(&self) -> anyhow::Result<u64> {
        match self {
            RssSource::Pid(pid) => {
                let path = PathBuf::from(format!("/proc/{pid}/status"));
                let text = tokio::fs::read_to_string(&path).await.with_context(|| {
                    format!("cannot read {}; is pid {pid} running here?", path.display())
                })?;
                vm_rss(&text).with_context(|| format!("no VmRSS line in {}", path.display()))
            }
            RssSource::Metrics { addr, path } => {
                let body = http_get(addr, path).await?;
                metric(&body, "process_resident_memory_bytes").with_context(|| {
                    format!("http://{addr}{path} has no process_resident_memory_bytes (a gateway on Linux exports it)")
                })
            }
        }
    }
}

/// This process's own resident bytes (the load generator's share).
pub fn own_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| vm_rss(&t))
        .unwrap_or(0)
}

/// CPU seconds (user + system) process `pid` has used, from
/// `/proc/PID/stat` (`self` for this process). Linux reports them in
/// USER_HZ ticks, which is 100 on every architecture it runs on.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds.
fn parse_cpu(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. There, field 3 (state) is index 0, utime (14) index 11.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `VmRSS:   123456 kB` in bytes.
pub fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The value of an unlabelled metric in Prometheus text format.
pub fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.split_once(char::is_whitespace)?;
            (key == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .map(|v| v as u64)
}

/// Every series of metric `name` in Prometheus text format, as (value of
/// label `label`, value): `quiver_positions_dropped_total{reason="stale"} 3`
/// gives `("stale", 3)`. A series without that label gives `""`.
pub fn labelled(body: &str, name: &str, label: &str) -> Vec<(String, u64)> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None if rest.starts_with(char::is_whitespace) => ("", rest),
                None => return None,
            };
            let value = value.trim().parse::<f64>().ok()?;
            let key = format!("{label}=\"");
            let picked = labels
                .split(',')
                .find_map(|pair| pair.trim().strip_prefix(key.as_str()))
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or("");
            Some((picked.to_owned(), value as u64))
        })
        .collect()
}

/// A plain HTTP/1.0 GET (the ops listener speaks plain HTTP on loopback).
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("http://{addr}{path} did not answer in 5 s"))??;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("http://{addr}{path}: malformed response");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("http://{addr}{path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

/// Reads the server's memory once a second into `live` until aborted.
pub fn watch(source: RssSource, live: Arc<Live>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(bytes) = source.read().await {
                live.set_server_rss(bytes);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_and_metrics() {
        let status = "Name:\tquiver\nVmPeak:\t 9 kB\nVmRSS:\t  2048 kB\nThreads: 4\n";
        assert_eq!(vm_rss(status), Some(2 * 1024 * 1024));
        let body = "# HELP process_resident_memory_bytes x\n# TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes 1.2345e+07\nprocess_virtual_memory_bytes 9\n";
        assert_eq!(
            metric(body, "process_resident_memory_bytes"),
            Some(12_345_000)
        );
        assert_eq!(metric(body, "nope"), None);
    }

    #[test]
    fn reads_labelled_series() {
        let body = "# TYPE quiver_positions_dropped_total counter\n\
                    quiver_positions_dropped_total{reason=\"rate_limited\"} 12\n\
                    quiver_positions_dropped_total{reason=\"stale\"} 0\n\
                    quiver_positions_dropped_totalx{reason=\"x\"} 5\n\
                    quiver_positions_accepted_total 7\n";
        assert_eq!(
            labelled(body, "quiver_positions_dropped_total", "reason"),
            vec![("rate_limited".to_owned(), 12), ("stale".to_owned(), 0)]
        );
        assert_eq!(
            labelled(body, "quiver_positions_accepted_total", "reason"),
            vec![(String::new(), 7)]
        );
    }

    #[test]
    fn cpu_time_is_user_plus_system() {
        let stat = "42 (a b) c) S 1 1 1 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 4 0 1";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert!(cpu_seconds("self").is_some());
    }

    #[test]
    fn flags_pick_a_source() {
        assert!(matches!(
            RssSource::from_flags(Some(7), Some("http://x:1/metrics")),
            Ok(Some(RssSource::Pid(7)))
        ));
        match RssSource::from_flags(None, Some("http://127.0.0.1:9090")) {
            Ok(Some(RssSource::Metrics { addr, path })) => {
                assert_eq!(
                    (addr.as_str(), path.as_str()),
                    ("127.0.0.1:9090", "/metrics")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(RssSource::from_flags(None, Some("127.0.0.1:9090")).is_err());
        assert!(matches!(RssSource::from_flags(None, None), Ok(None)));
    }

    #[tokio::test]
    async fn own_pid_has_memory() {
        let rss = RssSource::Pid(std::process::id())
            .read()
            .await
            .expect("rss");
        assert!(rss > 0);
        assert!(own_rss() > 0);
    }
}
