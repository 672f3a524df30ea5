//! The tracking scenario's figures: the report that is both the JSON file
//! and the source of the printed table, and the verdict on it.

use serde::Serialize;

use super::GatewayCounts;
use crate::progress::Series;
use crate::report::{Figures, Table, grouped, ms, per_sec, percentiles};
use crate::scenarios::chat::verdict;
use crate::stats::Summary;

/// Every figure of a tracking run.
#[derive(Debug, Clone, Serialize)]
pub struct TrackingReport {
    pub scenario: &'static str,
    pub started_unix_ms: u64,
    pub server: String,
    pub entities: u32,
    pub rate_per_entity: f64,
    pub channels: u32,
    pub watchers: u32,
    /// As asked for (0 = the namespace's maximum).
    pub max_rate: u32,
    pub trackers: u32,
    /// Positions per second of the busiest tracker connection.
    pub tracker_rate: f64,
    /// The gateway's per-connection limit the trackers were kept under.
    pub track_limit: u32,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub watchers_connect_s: f64,
    /// Per watcher: connect plus the watch round trip.
    pub watcher_connect_ms: Summary,
    pub trackers_connect_s: f64,
    pub target_send_rate: f64,
    /// Positions sent per second in the window.
    pub send_rate: f64,
    pub sent_total: u64,
    pub send_errors: u64,
    pub first_send_error: Option<String>,
    /// Positions a late tracker skipped rather than send in a burst.
    pub skipped: u64,
    /// How far behind its schedule a tracker sent (load generator lag).
    pub send_lag: Summary,
    /// Live positions received per second in the window, all watchers.
    pub delivery_rate: f64,
    pub expected_delivery_rate: f64,
    pub delivered_total: u64,
    /// Positions received as part of a watch's opening snapshot.
    pub snapshot_positions: u64,
    /// Receipt time − the position's timestamp, live updates in the window.
    pub staleness: Summary,
    pub staleness_goal_ms: f64,
    pub staleness_goal_met: bool,
    pub watches_failed: u64,
    pub first_watch_error: Option<String>,
    pub reconnects: u64,
    /// From --metrics; `None` when not asked for or unreachable.
    pub gateway: Option<GatewayCounts>,
    pub gateway_error: Option<String>,
    pub passed: bool,
    pub failures: Vec<String>,
    pub series: Series,
}

/// Why the run counts as failed: nothing delivered, watches or sends that
/// failed, or positions the gateway refused or dropped over its rate limit.
/// Staleness is reported against its goal, never judged here.
pub(super) fn judge(r: &TrackingReport) -> Vec<String> {
    let mut failures = Vec::new();
    if r.delivered_total == 0 {
        failures.push("no position was delivered".into());
    }
    if r.watches_failed > 0 {
        failures.push(format!(
            "{} watches ended early ({})",
            r.watches_failed,
            r.first_watch_error.as_deref().unwrap_or("no error")
        ));
    }
    if r.send_errors > 0 {
        failures.push(format!("{} positions could not be sent", r.send_errors));
    }
    if let Some(gateway) = &r.gateway {
        let limited = gateway.dropped("rate_limited");
        if limited > 0 {
            failures.push(format!(
                "the gateway dropped {limited} positions over its track rate limit: \
                 --track-limit {} is above its [limits] track_rate_per_sec",
                r.track_limit
            ));
        }
        let forbidden = gateway.dropped("forbidden") + gateway.dropped("invalid");
        if forbidden > 0 {
            failures.push(format!(
                "the gateway refused {forbidden} positions (forbidden or invalid)"
            ));
        }
    }
    failures
}

impl TrackingReport {
    /// `met` or `not met (p99 X ms, Y ms over)`.
    pub fn goal_text(&self) -> String {
        if self.staleness.count == 0 {
            "no samples".into()
        } else if self.staleness_goal_met {
            format!("met (p99 {} ms)", ms(self.staleness.p99_ms))
        } else {
            format!(
                "not met (p99 {} ms, {} ms over)",
                ms(self.staleness.p99_ms),
                ms(self.staleness.p99_ms - self.staleness_goal_ms)
            )
        }
    }

    fn gateway_text(&self) -> String {
        let Some(g) = &self.gateway else {
            return match &self.gateway_error {
                Some(e) => format!("- ({e})"),
                None => "- (pass --metrics http://HOST:PORT/metrics)".into(),
            };
        };
        let dropped: Vec<String> = g
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(reason, n)| format!("{reason} {}", grouped(*n)))
            .collect();
        let delivered: Vec<String> = g
            .delivered
            .iter()
            .map(|(via, n)| format!("{via} {}", grouped(*n)))
            .collect();
        format!(
            "accepted {}, dropped {}, delivered {} (whole run)",
            grouped(g.accepted),
            if dropped.is_empty() {
                "0".into()
            } else {
                dropped.join(", ")
            },
            delivered.join(", ")
        )
    }
}

impl Figures for TrackingReport {
    fn scenario(&self) -> &str {
        self.scenario
    }

    fn table(&self) -> Table {
        let max_rate = if self.max_rate == 0 {
            "namespace max".to_owned()
        } else {
            format!("{}/s", self.max_rate)
        };
        let mut t = Table::new(format!(
            "quiver-load tracking: {} entities × {}/s over {} channels, {} watchers (max rate {max_rate})",
            grouped(u64::from(self.entities)),
            self.rate_per_entity,
            grouped(u64::from(self.channels)),
            grouped(u64::from(self.watchers)),
        ));
        t.row(
            "connect",
            format!(
                "{} watchers in {:.2} s, {} trackers in {:.2} s",
                grouped(u64::from(self.watchers)),
                self.watchers_connect_s,
                self.trackers,
                self.trackers_connect_s
            ),
        )
        .row(
            "trackers",
            format!(
                "{} connections, up to {:.0} positions/s each (limit {}/s)",
                self.trackers, self.tracker_rate, self.track_limit
            ),
        )
        .row(
            "positions sent",
            format!(
                "{} (target {}), {} skipped",
                per_sec(self.send_rate),
                per_sec(self.target_send_rate),
                grouped(self.skipped)
            ),
        )
        .row(
            "positions delivered",
            format!(
                "{} (expected {}, {:.1} %)",
                per_sec(self.delivery_rate),
                per_sec(self.expected_delivery_rate),
                100.0 * self.delivery_rate / self.expected_delivery_rate.max(1e-9)
            ),
        )
        .row("staleness ms", percentiles(&self.staleness))
        .row(
            "staleness goal",
            format!(
                "p99 < {} ms: {}",
                ms(self.staleness_goal_ms),
                self.goal_text()
            ),
        )
        .row("tracker lag ms", percentiles(&self.send_lag))
        .row("gateway", self.gateway_text())
        .row("snapshot positions", grouped(self.snapshot_positions))
        .row(
            "errors",
            format!(
                "{} send, {} watches ended, {} reconnects",
                grouped(self.send_errors),
                self.watches_failed,
                self.reconnects
            ),
        );
        if let Some(e) = &self.first_send_error {
            t.row("first send error", e.clone());
        }
        if let Some(e) = &self.first_watch_error {
            t.row("first watch error", e.clone());
        }
        t.row("result", verdict(self.passed, &self.failures));
        t
    }

    fn passed(&self) -> bool {
        self.passed
    }

    fn series(&self) -> &Series {
        &self.series
    }
}
