//! The fanout scenario's figures: one struct that is both the JSON report
//! and the source of the printed table, so the two never disagree.

use std::time::Duration;

use serde::Serialize;

use super::FanoutArgs;
use crate::common::{CommonArgs, Timeline};
use crate::progress::Series;
use crate::report::{Figures, Table, grouped, ms, per_sec, percentiles};
use crate::scenarios::traffic::{publisher, subscriber};
use crate::stats::Summary;

/// What the run measured, handed over by the scenario (or by the floor's
/// thin clients, which report the same figures).
#[derive(Debug)]
pub struct Measured {
    /// `gateway` or `floor`.
    pub target: &'static str,
    pub subscribers_connect_s: f64,
    pub subscriber_connect: Summary,
    pub publishers_connect_s: f64,
    pub timeline: Timeline,
    /// Time from the end of the window until every subscriber was done.
    pub drained_after: Duration,
    pub published: publisher::Outcome,
    pub received: subscriber::Outcome,
    pub latency: Summary,
    pub ack_latency: Summary,
    pub reconnects: u64,
    pub started_unix_ms: u64,
    pub series: Series,
}

/// Every figure of a fanout run. Rates and latencies cover the measurement
/// window only; counts marked `_total` and the offset checks cover the run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub scenario: &'static str,
    /// `gateway` (quiver-client against `quiver serve`) or `floor` (raw
    /// quinn against `quiver-load floor`).
    pub target: &'static str,
    /// When the load started, Unix milliseconds.
    pub started_unix_ms: u64,
    pub server: String,
    pub channel: String,
    pub subscribers: u32,
    pub publishers: u32,
    pub sockets: u32,
    pub payload_bytes: usize,
    /// Messages per second asked for; 0 means as fast as acks allow.
    pub target_rate: f64,
    pub inflight_per_publisher: u32,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub drain_s: f64,
    /// Time taken after the window until subscribers were drained.
    pub drained_after_s: f64,

    pub subscribers_connect_s: f64,
    /// Per subscriber: connect (QUIC, TLS, Hello) plus subscribe.
    pub subscriber_connect_ms: Summary,
    pub publishers_connect_s: f64,

    /// Acked publishes per second in the window.
    pub publish_rate: f64,
    pub published_in_window: u64,
    pub published_total: u64,
    pub acked_total: u64,
    pub publish_errors: u64,
    pub first_publish_error: Option<String>,
    /// Scheduled messages never sent because acks lagged (paced runs).
    pub unsent: u64,
    /// Deliveries per second in the window, over all subscribers.
    pub delivery_rate: f64,
    /// `target_rate × subscribers` (0 for unpaced runs).
    pub expected_delivery_rate: f64,
    pub delivered_in_window: u64,
    pub delivered_total: u64,
    /// Publish→deliver latency, from the scheduled send time.
    pub latency: Summary,
    /// Publish→ack latency, from the scheduled send time.
    pub ack_latency: Summary,

    pub gaps: u64,
    pub duplicates: u64,
    /// Acked messages some subscriber never got before the deadline.
    pub undelivered: u64,
    /// Deliveries without the load-test header (other publishers).
    pub foreign: u64,
    pub subscriptions_failed: u64,
    pub first_subscription_error: Option<String>,
    pub reconnects: u64,

    pub passed: bool,
    pub failures: Vec<String>,
    /// The run second by second.
    pub series: Series,
}

impl Figures for FanoutReport {
    fn scenario(&self) -> &str {
        self.scenario
    }
    fn table(&self) -> Table {
        FanoutReport::table(self)
    }
    fn passed(&self) -> bool {
        self.passed
    }
    fn series(&self) -> &Series {
        &self.series
    }
}

impl FanoutReport {
    pub fn new(common: &CommonArgs, args: &FanoutArgs, channel: &str, m: Measured) -> Self {
        let window = m.timeline.window().as_secs_f64();
        let mut report = Self {
            scenario: "fanout",
            target: m.target,
            started_unix_ms: m.started_unix_ms,
            server: common.server.clone(),
            channel: channel.to_owned(),
            subscribers: args.subscribers,
            publishers: args.publishers,
            sockets: common.sockets,
            payload_bytes: args.size,
            target_rate: args.rate,
            inflight_per_publisher: args.inflight,
            warmup_s: common.warmup,
            duration_s: window,
            drain_s: common.drain,
            drained_after_s: m.drained_after.as_secs_f64(),
            subscribers_connect_s: m.subscribers_connect_s,
            subscriber_connect_ms: m.subscriber_connect,
            publishers_connect_s: m.publishers_connect_s,
            publish_rate: m.published.acked_in_window as f64 / window,
            published_in_window: m.published.acked_in_window,
            published_total: m.published.sent,
            acked_total: m.published.acked,
            publish_errors: m.published.errors,
            first_publish_error: m.published.first_error,
            unsent: m.published.unsent,
            delivery_rate: m.received.delivered_in_window as f64 / window,
            expected_delivery_rate: args.rate * f64::from(args.subscribers),
            delivered_in_window: m.received.delivered_in_window,
            delivered_total: m.received.delivered,
            latency: m.latency,
            ack_latency: m.ack_latency,
            gaps: m.received.offsets.gaps,
            duplicates: m.received.offsets.duplicates,
            undelivered: m.received.undelivered,
            foreign: m.received.foreign,
            subscriptions_failed: m.received.failed,
            first_subscription_error: m.received.error,
            reconnects: m.reconnects,
            passed: false,
            failures: Vec::new(),
            series: m.series,
        };
        report.failures = report.judge();
        report.passed = report.failures.is_empty();
        report
    }

    /// Why the run counts as failed: broken delivery guarantees, or nothing
    /// measured at all. Slowness is reported, never judged here.
    fn judge(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.gaps > 0 {
            failures.push(format!("{} offsets skipped (gaps)", self.gaps));
        }
        if self.duplicates > 0 {
            failures.push(format!("{} duplicate deliveries", self.duplicates));
        }
        if self.delivered_total == 0 {
            failures.push("no message was delivered".into());
        }
        if self.undelivered > 0 {
            failures.push(format!(
                "{} acked deliveries missing after the drain (raise --drain if the server was still catching up)",
                self.undelivered
            ));
        }
        failures
    }

    /// The plain-text summary.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "quiver-load fanout ({}): {} subscribers, {} publisher(s), {} B payload, channel {}",
            self.target,
            grouped(self.subscribers.into()),
            self.publishers,
            self.payload_bytes,
            self.channel
        ));
        let target = if self.target_rate > 0.0 {
            format!(
                "{} msg/s ({} deliveries/s expected)",
                per_sec(self.target_rate).trim_end_matches("/s"),
                grouped(self.expected_delivery_rate.round() as u64)
            )
        } else {
            format!(
                "as fast as acks allow ({} in flight per publisher)",
                self.inflight_per_publisher
            )
        };
        t.row(
            "connect",
            format!(
                "{} subscribers in {:.2} s (each {} ms p50, {} ms p99, {} ms max)",
                grouped(self.subscribers.into()),
                self.subscribers_connect_s,
                ms(self.subscriber_connect_ms.p50_ms),
                ms(self.subscriber_connect_ms.p99_ms),
                ms(self.subscriber_connect_ms.max_ms)
            ),
        )
        .row("target rate", target)
        .row(
            "publish rate",
            format!(
                "{} acked ({} in {:.1} s)",
                per_sec(self.publish_rate),
                grouped(self.published_in_window),
                self.duration_s
            ),
        )
        .row(
            "deliveries",
            format!(
                "{} ({} in {:.1} s)",
                per_sec(self.delivery_rate),
                grouped(self.delivered_in_window),
                self.duration_s
            ),
        )
        .row("latency ms", percentiles(&self.latency))
        .row("ack latency ms", percentiles(&self.ack_latency))
        .row("gaps", grouped(self.gaps))
        .row("duplicates", grouped(self.duplicates))
        .row("undelivered", grouped(self.undelivered))
        .row(
            "errors",
            format!(
                "{} publish, {} subscriptions ended, {} reconnects, {} unsent",
                grouped(self.publish_errors),
                self.subscriptions_failed,
                self.reconnects,
                grouped(self.unsent)
            ),
        );
        if let Some(error) = &self.first_publish_error {
            t.row("first publish error", error.clone());
        }
        if let Some(error) = &self.first_subscription_error {
            t.row("first subscription error", error.clone());
        }
        t.row(
            "result",
            if self.passed {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", self.failures.join("; "))
            },
        );
        t
    }
}
