//! The live view of a run: an indicatif bar on a terminal, a plain line per
//! second otherwise (CI logs, `| tee`), and the per-second time series the
//! HTML report charts. One [`Monitor`] task per run reads [`Live`].

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::live::{Counters, Live, Sample};
use crate::report::{grouped, ms};

/// How often the bar is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
/// Length of one time-series sample (and of a progress line).
const SAMPLE: Duration = Duration::from_secs(1);

/// `--progress`: how a run shows itself while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// A bar when stdout is a terminal, else a line per second.
    #[default]
    Auto,
    Bar,
    Lines,
    Off,
}

impl ProgressMode {
    fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stdout().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Lines,
            other => other,
        }
    }
}

/// What the run is doing now, shown before the figures.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    /// Expected length, for the bar; `None` shows a spinner.
    pub length: Option<Duration>,
}

/// The per-second series of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    pub samples: Vec<Sample>,
}

/// Handle of the monitor task.
#[derive(Debug)]
pub struct Monitor {
    phase: watch::Sender<Phase>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Series>,
}

impl Monitor {
    /// Starts watching `live`; `label` prefixes every line.
    pub fn start(live: Arc<Live>, mode: ProgressMode, label: impl Into<String>) -> Self {
        let (phase, phases) = watch::channel(Phase {
            name: "starting".into(),
            length: None,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(watch_run(
            live,
            mode.resolve(),
            label.into(),
            phases,
            stopped,
        ));
        Self {
            phase,
            stop: Some(stop),
            task,
        }
    }

    /// Switches the display to a new phase (connecting, measuring, ...).
    pub fn phase(&self, name: impl Into<String>, length: Option<Duration>) {
        self.phase.send_replace(Phase {
            name: name.into(),
            length,
        });
    }

    /// Stops the display and returns the series.
    pub async fn finish(mut self) -> Series {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or_default()
    }
}

async fn watch_run(
    live: Arc<Live>,
    mode: ProgressMode,
    label: String,
    mut phases: watch::Receiver<Phase>,
    mut stopped: oneshot::Receiver<()>,
) -> Series {
    let started = Instant::now();
    let bar = (mode == ProgressMode::Bar).then(|| new_bar(&label));
    let mut series = Series::default();
    let mut last_sample = (started, live.counters());
    let mut phase_started = started;
    let mut last = Sample::default();
    let mut tick = tokio::time::interval(REDRAW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = phases.changed() => {
                if changed.is_ok() {
                    phase_started = Instant::now();
                    let phase = phases.borrow().clone();
                    if let Some(bar) = &bar {
                        set_phase(bar, &phase);
                    } else if mode == ProgressMode::Lines {
                        eprintln!("[{label}] {:>6.1}s  {}", started.elapsed().as_secs_f64(), phase.name);
                    }
                }
                continue;
            }
            _ = &mut stopped => break,
        }
        let now = Instant::now();
        // A redraw tick may come a little early; still one sample a second.
        if now - last_sample.0 >= SAMPLE - REDRAW / 4 {
            let counters = live.counters();
            let (delivery, ack) = live.take_intervals();
            last = Sample::between(
                (now - started).as_secs_f64(),
                (now - last_sample.0).as_secs_f64(),
                last_sample.1,
                counters,
                (&delivery, &ack),
            );
            series.samples.push(last);
            last_sample = (now, counters);
            if mode == ProgressMode::Lines {
                eprintln!(
                    "[{label}] {:>6.1}s  {}",
                    last.t_s,
                    status(&last, live.counters())
                );
            }
        }
        if let Some(bar) = &bar {
            let phase = phases.borrow();
            if let Some(length) = phase.length {
                bar.set_position((now - phase_started).min(length).as_millis() as u64);
            }
            bar.set_message(status(&last, live.counters()));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    series
}

fn new_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    set_phase(
        &bar,
        &Phase {
            name: format!("{label}: starting"),
            length: None,
        },
    );
    bar
}

fn set_phase(bar: &ProgressBar, phase: &Phase) {
    let template = match phase.length {
        Some(_) => "{spinner} {prefix} [{elapsed_precise}] {bar:24} {wide_msg}",
        None => "{spinner} {prefix} [{elapsed_precise}] {wide_msg}",
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_length(phase.length.map_or(0, |l| l.as_millis() as u64));
    bar.set_position(0);
    bar.set_prefix(phase.name.clone());
    bar.enable_steady_tick(REDRAW);
}

/// The one-line status: rates of the last second, p99, connections.
fn status(last: &Sample, now: Counters) -> String {
    let mut parts = Vec::new();
    if last.deliveries_per_s > 0.0 || now.delivered > 0 {
        parts.push(format!(
            "deliveries {}/s p99 {} ms",
            grouped(last.deliveries_per_s.round() as u64),
            p99(&last.delivery)
        ));
    }
    if last.acks_per_s > 0.0 || now.acked > 0 {
        parts.push(format!(
            "acks {}/s p99 {} ms",
            grouped(last.acks_per_s.round() as u64),
            p99(&last.ack)
        ));
    }
    parts.push(format!("conns {}", grouped(now.connections)));
    if last.connects_per_s > 0.0 {
        parts.push(format!(
            "+{}/s",
            grouped(last.connects_per_s.round() as u64)
        ));
    }
    if now.server_rss > 0 {
        parts.push(format!(
            "server {:.0} MiB",
            now.server_rss as f64 / 1048576.0
        ));
    }
    parts.push(format!(
        "errors {}",
        grouped(now.errors + now.connect_failures)
    ));
    parts.join(" · ")
}

fn p99(summary: &crate::stats::Summary) -> String {
    if summary.count == 0 {
        "-".into()
    } else {
        ms(summary.p99_ms)
    }
}
