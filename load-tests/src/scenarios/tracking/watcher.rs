//! The watchers: each on its own connection, watching one channel and
//! timing how stale every live position is when it arrives.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use quiver_client::{Client, Watch};

use super::TrackingArgs;
use crate::clients::{Connected, connect_all};
use crate::common::{Setup, Timeline};
use crate::live::{Live, Probe};

/// Connects every watcher and starts its watch; the connect latency
/// includes the watch round trip.
pub(super) async fn connect(
    setup: &Setup,
    args: &TrackingArgs,
    channels: &[Arc<str>],
    live: &Arc<Live>,
) -> anyhow::Result<(Connected<Client>, Vec<Watch>)> {
    let count = args.watchers as usize;
    eprintln!(
        "connecting {count} watchers to {} channels ({} at once)",
        channels.len(),
        setup.connect_concurrency
    );
    let connected = connect_all(count, setup.connect_concurrency, |index| {
        let channel = Arc::clone(&channels[index % channels.len()]);
        async move {
            let token = setup.minter.token(&format!("load-watcher-{index}"))?;
            let config = setup
                .pool
                .client_config(token, "quiver-load/tracking-watch");
            let client = setup.pool.connect(index, config).await?;
            live.connection(1);
            let watch = client
                .watch(&channel, args.max_rate)
                .await
                .with_context(|| format!("watcher {index} cannot watch {channel}"))?;
            anyhow::Ok((client, watch))
        }
    })
    .await?;
    let (clients, watches) = connected.items.into_iter().unzip();
    Ok((
        Connected {
            items: clients,
            latency: connected.latency,
            elapsed: connected.elapsed,
        },
        watches,
    ))
}

/// What one or all watchers received.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) delivered: u64,
    pub(super) delivered_in_window: u64,
    pub(super) snapshot: u64,
    pub(super) failed: u64,
    pub(super) error: Option<String>,
}

impl Outcome {
    pub(super) fn merge(&mut self, other: Outcome) {
        self.delivered += other.delivered;
        self.delivered_in_window += other.delivered_in_window;
        self.snapshot += other.snapshot;
        self.failed += other.failed;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

/// Microseconds since the Unix epoch.
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How old a position stamped `timestamp_ms` is at `now_us` (zero if the
/// stamp is ahead: one clock, so only by rounding).
fn staleness(now_us: u64, timestamp_ms: u64) -> Duration {
    Duration::from_micros(now_us.saturating_sub(timestamp_ms.saturating_mul(1000)))
}

/// Takes positions until `stop_at`, timing every live one.
pub(super) async fn run(
    mut watch: Watch,
    timeline: Timeline,
    stop_at: Instant,
    mut probe: Probe,
) -> Outcome {
    let mut outcome = Outcome::default();
    let stop = tokio::time::sleep_until(stop_at.into());
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = watch.next() => event,
            () = &mut stop => break,
        };
        match event {
            Some(Ok(event)) if event.snapshot => outcome.snapshot += 1,
            Some(Ok(event)) => {
                let age = staleness(unix_us(), event.position.timestamp_ms);
                let now = Instant::now();
                probe.record(age, now);
                outcome.delivered += 1;
                if timeline.measures(now) {
                    outcome.delivered_in_window += 1;
                }
            }
            Some(Err(error)) => {
                probe.error();
                outcome.failed += 1;
                outcome.error = Some(format!("{}: {error}", watch.channel()));
                break;
            }
            None => {
                probe.error();
                outcome.failed += 1;
                outcome.error = Some(format!("{}: the watch ended", watch.channel()));
                break;
            }
        }
    }
    probe.flush();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_is_receipt_minus_stamp() {
        assert_eq!(
            staleness(1_000_012_500, 1_000_000),
            Duration::from_micros(12_500)
        );
        assert_eq!(staleness(999_000, 1_000), Duration::ZERO);
    }
}
