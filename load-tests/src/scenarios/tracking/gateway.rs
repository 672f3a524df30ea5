//! The gateway's own position counters, read from its Prometheus
//! `/metrics` (`--metrics`) before and after the run.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;

use crate::memory::{http_get, labelled};

/// What the gateway's counters said (differences over the run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayCounts {
    /// Positions taken as their entity's newest.
    pub accepted: u64,
    /// Positions not taken, by reason (`rate_limited`, `stale`, ...).
    pub dropped: BTreeMap<String, u64>,
    /// Positions sent to watchers, by transport (`datagram`, `stream`).
    pub delivered: BTreeMap<String, u64>,
}

impl GatewayCounts {
    pub(super) async fn read(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("--metrics {url}: use http://HOST:PORT/metrics"))?;
        let (addr, path) = match rest.split_once('/') {
            Some((addr, path)) => (addr, format!("/{path}")),
            None => (rest, "/metrics".to_owned()),
        };
        let body = http_get(addr, &path).await?;
        let accepted = labelled(&body, "quiver_positions_accepted_total", "")
            .into_iter()
            .map(|(_, v)| v)
            .sum();
        Ok(Self {
            accepted,
            dropped: labelled(&body, "quiver_positions_dropped_total", "reason")
                .into_iter()
                .collect(),
            delivered: labelled(&body, "quiver_positions_delivered_total", "via")
                .into_iter()
                .collect(),
        })
    }

    /// The counts over the run: read again from `metrics` and taken from
    /// the reading `before` it, or why they cannot be (`None` for both
    /// when `--metrics` was not given).
    pub(super) async fn change(
        metrics: Option<&str>,
        before: Option<anyhow::Result<Self>>,
    ) -> (Option<Self>, Option<String>) {
        match (metrics, before) {
            (Some(url), Some(Ok(before))) => match Self::read(url).await {
                Ok(after) => (Some(after.since(&before)), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            },
            (_, Some(Err(e))) => (None, Some(format!("{e:#}"))),
            _ => (None, None),
        }
    }

    fn since(&self, before: &Self) -> Self {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.saturating_sub(then.get(k).copied().unwrap_or(0)),
                    )
                })
                .collect()
        };
        Self {
            accepted: self.accepted.saturating_sub(before.accepted),
            dropped: diff(&self.dropped, &before.dropped),
            delivered: diff(&self.delivered, &before.delivered),
        }
    }

    pub(super) fn dropped(&self, reason: &str) -> u64 {
        self.dropped.get(reason).copied().unwrap_or(0)
    }
}
