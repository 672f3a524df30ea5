//! What every scenario shares: where the server is, how to trust and
//! authenticate to it, and the run's timeline (warmup, measurement, drain).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::Trust;

use crate::clients::Pool;
use crate::progress::ProgressMode;
use crate::tokens::Minter;

/// Tokens outlive the run by this much, so a slow connect phase or a
/// reconnect near the end never meets an expired token.
const TOKEN_MARGIN: Duration = Duration::from_secs(3600);

/// Flags common to every scenario.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Gateway address, host:port.
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub server: String,
    /// PEM certificate to trust (dev server: DATA_DIR/tls/dev-cert.pem).
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Skip certificate verification (local servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Data dir of a `quiver serve` without config: tokens are minted for
    /// the dev tenant `demo` with DATA_DIR/dev/demo.secret. Note that the
    /// dev server limits each connection to 100 publishes/s.
    #[arg(long, conflicts_with_all = ["tenant", "secret"])]
    pub data_dir: Option<PathBuf>,
    /// Tenant to mint tokens for (with --secret).
    #[arg(long, requires = "secret")]
    pub tenant: Option<String>,
    /// The tenant's HS256 secret (its `hs256_secret` in the server config).
    #[arg(
        long,
        requires = "tenant",
        env = "QUIVER_LOAD_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// Measurement window, seconds.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub duration: f64,
    /// Load before the window that is not measured, seconds.
    #[arg(long, default_value_t = 2.0, value_parser = seconds)]
    pub warmup: f64,
    /// Longest wait after the window for outstanding acks and deliveries,
    /// seconds.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub drain: f64,
    /// Write every figure of the run to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an HTML report with charts (latency percentiles, throughput
    /// and connections over time) to DIR/<scenario>.html.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Live progress: a bar on a terminal, a line per second otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// UDP sockets (quinn endpoints) the clients are spread over.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub sockets: u32,
    /// Connection attempts in flight at once while connecting.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connect_concurrency: u32,
}

/// Parses a non-negative, finite number of seconds.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds in 0..=86400")),
    }
}

/// What a scenario needs from the common flags, resolved.
#[derive(Debug)]
pub struct Setup {
    pub pool: Pool,
    pub minter: Minter,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub connect_concurrency: usize,
}

impl CommonArgs {
    /// How to trust the server's certificate.
    pub fn trust(&self) -> anyhow::Result<Trust> {
        Ok(match (&self.ca, self.insecure) {
            (Some(ca), _) => Trust::CaPem(ca.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => bail!(
                "no certificate to trust: pass --ca PEM (dev server: --ca DATA_DIR/tls/dev-cert.pem) or --insecure"
            ),
        })
    }

    /// Warmup, measurement and drain as durations.
    pub fn phases(&self) -> anyhow::Result<(Duration, Duration, Duration)> {
        let duration = Duration::from_secs_f64(self.duration);
        if duration.is_zero() {
            bail!("--duration must be above 0");
        }
        Ok((
            Duration::from_secs_f64(self.warmup),
            duration,
            Duration::from_secs_f64(self.drain),
        ))
    }

    /// Opens the sockets and loads the signing secret.
    pub async fn setup(&self) -> anyhow::Result<Setup> {
        let (warmup, duration, drain) = self.phases()?;
        let trust = self.trust()?;
        let lifetime = warmup + duration + drain + TOKEN_MARGIN;
        let minter = match (&self.data_dir, &self.tenant, &self.secret) {
            (Some(dir), _, _) => Minter::dev(dir, lifetime)?,
            (None, Some(tenant), Some(secret)) => {
                Minter::new(tenant.clone(), secret.as_bytes().to_vec(), lifetime)?
            }
            _ => bail!(
                "no way to mint tokens: pass --data-dir DIR (dev server) or --tenant T --secret S"
            ),
        };
        let pool = Pool::new(&self.server, trust, self.sockets as usize)
            .await
            .context("cannot set up the client sockets")?;
        Ok(Setup {
            pool,
            minter,
            warmup,
            duration,
            drain,
            connect_concurrency: self.connect_concurrency as usize,
        })
    }
}

/// The phases of a run, fixed when the load starts.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Load starts.
    pub start: Instant,
    /// Warmup ends and measuring begins.
    pub measure_from: Instant,
    /// Measuring ends and publishers stop.
    pub measure_until: Instant,
    /// Everything stops, drained or not.
    pub deadline: Instant,
}

impl Timeline {
    pub fn new(start: Instant, warmup: Duration, duration: Duration, drain: Duration) -> Self {
        let measure_from = start + warmup;
        let measure_until = measure_from + duration;
        Self {
            start,
            measure_from,
            measure_until,
            deadline: measure_until + drain,
        }
    }

    /// Whether an event at `at` falls in the measurement window.
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.measure_until
    }

    /// Length of the measurement window.
    pub fn window(&self) -> Duration {
        self.measure_until - self.measure_from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open_after_warmup() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let t = Timeline::new(start, s(2), s(10), s(5));
        assert!(!t.measures(start + s(1)));
        assert!(t.measures(start + s(2)));
        assert!(t.measures(start + s(11)));
        assert!(!t.measures(start + s(12)));
        assert_eq!(t.window(), s(10));
        assert_eq!(t.deadline, start + s(17));
    }

    #[test]
    fn seconds_must_be_sane() {
        assert_eq!(seconds("1.5"), Ok(1.5));
        assert!(seconds("-1").is_err());
        assert!(seconds("inf").is_err());
        assert!(seconds("soon").is_err());
    }
}
