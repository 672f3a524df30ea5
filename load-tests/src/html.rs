//! The HTML report: one self-contained page (inline CSS and SVG charts, no
//! scripts, no external files) that a person can open from disk and read at
//! a glance: what ran, on what machine, the final figures, and how the run
//! went second by second.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use crate::machine::Machine;
use crate::progress::Series;

/// Chart size in SVG user units; the page scales it to its width.
const CHART_SIZE: (u32, u32) = (900, 320);
/// Line colours, in order: distinct and readable on white.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    /// (seconds, value)
    pub points: Vec<(f64, f64)>,
}

/// One chart: lines over time.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

/// A part of the page: a heading, a table of figures, charts.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub heading: String,
    pub rows: Vec<(String, String)>,
    pub charts: Vec<Chart>,
}

/// The whole page.
#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    pub command: String,
    pub machine: Machine,
    pub sections: Vec<Section>,
}

impl Chart {
    /// Renders the chart as an `<svg>` element.
    pub fn svg(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, CHART_SIZE).into_drawing_area();
            root.fill(&WHITE).context("chart background")?;
            let points = self.lines.iter().flat_map(|l| l.points.iter());
            let (x_max, y_max) = points.fold((1.0f64, 0.0f64), |(x, y), &(px, py)| {
                (x.max(px), if py.is_finite() { y.max(py) } else { y })
            });
            let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(80)
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .context("chart axes")?;
            chart
                .configure_mesh()
                .x_desc("seconds since start")
                .y_desc(self.y_label.as_str())
                .y_label_formatter(&|v| short_number(*v))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .context("chart grid")?;
            for (index, line) in self.lines.iter().enumerate() {
                let color = COLORS[index % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        line.points.iter().copied().filter(|(_, y)| y.is_finite()),
                        color.stroke_width(2),
                    ))
                    .context("chart line")?
                    .label(line.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            if !self.lines.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(200, 200, 200))
                    .draw()
                    .context("chart legend")?;
            }
            root.present().context("chart output")?;
        }
        Ok(out)
    }
}

/// `1234567` as `1.23M`, for axis labels.
fn short_number(value: f64) -> String {
    let a = value.abs();
    if a >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if a >= 100.0 || value == value.round() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The standard charts of a run's series, each only when it has data:
/// latency percentiles, throughput, connections, server memory.
pub fn standard_charts(name: &str, series: &Series) -> Vec<Chart> {
    let s = &series.samples;
    let pick = |f: &dyn Fn(&crate::live::Sample) -> f64| -> Vec<(f64, f64)> {
        s.iter().map(|x| (x.t_s, f(x))).collect()
    };
    let any = |f: &dyn Fn(&crate::live::Sample) -> f64| s.iter().any(|x| f(x) > 0.0);
    // Seconds without a sample have no percentile: leave them out rather
    // than draw a drop to zero.
    let pct = |kind: fn(&crate::live::Sample) -> &crate::stats::Summary,
               q: fn(&crate::stats::Summary) -> f64|
     -> Vec<(f64, f64)> {
        s.iter()
            .filter(|x| kind(x).count > 0)
            .map(|x| (x.t_s, q(kind(x))))
            .collect()
    };
    let mut charts = Vec::new();
    if any(&|x| x.delivery.count as f64) {
        charts.push(Chart {
            title: format!("{name}: publish→deliver latency per second"),
            y_label: "ms".into(),
            lines: vec![
                line("p50", pct(|x| &x.delivery, |q| q.p50_ms)),
                line("p90", pct(|x| &x.delivery, |q| q.p90_ms)),
                line("p99", pct(|x| &x.delivery, |q| q.p99_ms)),
            ],
        });
    }
    if any(&|x| x.ack.count as f64) {
        charts.push(Chart {
            title: format!("{name}: publish→ack latency per second"),
            y_label: "ms".into(),
            lines: vec![
                line("p50", pct(|x| &x.ack, |q| q.p50_ms)),
                line("p90", pct(|x| &x.ack, |q| q.p90_ms)),
                line("p99", pct(|x| &x.ack, |q| q.p99_ms)),
            ],
        });
    }
    let mut throughput = Vec::new();
    if any(&|x| x.deliveries_per_s) {
        throughput.push(line("deliveries/s", pick(&|x| x.deliveries_per_s)));
    }
    if any(&|x| x.acks_per_s) {
        throughput.push(line("acked publishes/s", pick(&|x| x.acks_per_s)));
    }
    if !throughput.is_empty() {
        charts.push(Chart {
            title: format!("{name}: throughput"),
            y_label: "per second".into(),
            lines: throughput,
        });
    }
    if any(&|x| x.connections as f64) {
        charts.push(Chart {
            title: format!("{name}: connections"),
            y_label: "connections".into(),
            lines: vec![
                line("open", pick(&|x| x.connections as f64)),
                line("new per second", pick(&|x| x.connects_per_s)),
            ],
        });
    }
    if any(&|x| x.server_rss_mib) {
        charts.push(Chart {
            title: format!("{name}: server resident memory"),
            y_label: "MiB".into(),
            lines: vec![line("RSS", pick(&|x| x.server_rss_mib))],
        });
    }
    charts
}

fn line(name: &str, points: Vec<(f64, f64)>) -> Line {
    Line {
        name: name.into(),
        points,
    }
}

impl Page {
    /// The page as one HTML document.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut html = String::with_capacity(64 * 1024);
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        let _ = write!(
            html,
            "<p class=\"meta\">{}</p>\n<pre class=\"cmd\">{}</pre>\n",
            escape(&self.machine.describe()),
            escape(&self.command)
        );
        for section in &self.sections {
            let _ = writeln!(html, "<h2>{}</h2>", escape(&section.heading));
            if !section.rows.is_empty() {
                html.push_str("<table>\n");
                for (label, value) in &section.rows {
                    let _ = writeln!(
                        html,
                        "<tr><th>{}</th><td>{}</td></tr>",
                        escape(label),
                        escape(value)
                    );
                }
                html.push_str("</table>\n");
            }
            for chart in &section.charts {
                html.push_str("<figure>");
                html.push_str(&chart.svg()?);
                html.push_str("</figure>\n");
            }
        }
        html.push_str("</body>\n</html>\n");
        Ok(html)
    }

    /// Renders and writes the page, creating the folder if needed.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, self.render()?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;\
padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;\
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:1em 0}\
th,td{text-align:left;padding:.25em .8em;border-bottom:1px solid #eee;vertical-align:top}\
th{font-weight:600;white-space:nowrap}.meta{color:#555}pre.cmd{background:#f6f6f6;\
padding:.6em;overflow-x:auto;white-space:pre-wrap}figure{margin:1em 0}\
figure svg{width:100%;height:auto}";

/// Text as HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Sample;
    use crate::stats::Summary;

    fn synthetic() -> Series {
        let samples = (1..=20)
            .map(|t| Sample {
                t_s: f64::from(t),
                deliveries_per_s: 1000.0 * f64::from(t),
                acks_per_s: 10.0,
                connections: 100,
                connects_per_s: if t < 3 { 50.0 } else { 0.0 },
                server_rss_mib: 40.0 + f64::from(t),
                delivery: Summary {
                    count: 100,
                    p50_ms: 1.0,
                    p90_ms: 2.0,
                    p99_ms: 5.0 + f64::from(t),
                    ..Summary::default()
                },
                ack: Summary {
                    count: 10,
                    p50_ms: 0.5,
                    p90_ms: 0.8,
                    p99_ms: 1.5,
                    ..Summary::default()
                },
                ..Sample::default()
            })
            .collect();
        Series { samples }
    }

    #[test]
    fn report_has_one_svg_per_chart_and_is_well_formed() {
        let charts = standard_charts("fanout <x>", &synthetic());
        assert_eq!(
            charts.len(),
            5,
            "latency, ack, throughput, connections, rss"
        );
        let page = Page {
            title: "quiver-load & friends".into(),
            command: "quiver-load fanout --subscribers 10 <test>".into(),
            machine: Machine::now(),
            sections: vec![Section {
                heading: "gateway".into(),
                rows: vec![("p99".into(), "<1 ms".into())],
                charts,
            }],
        };
        let html = page.render().expect("render");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(html.matches("<svg").count(), 5);
        assert_eq!(html.matches("</svg>").count(), 5);
        assert_eq!(html.matches("<figure>").count(), 5);
        // Text is escaped, both in the page and in the charts.
        assert!(html.contains("quiver-load &amp; friends"));
        assert!(html.contains("&lt;1 ms"));
        assert!(!html.contains("<test>") && !html.contains("<x>"));
        assert!(html.contains("p99") && html.contains("deliveries/s"));
        // Self-contained: nothing fetched from elsewhere.
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
    }

    #[test]
    fn empty_series_gives_no_chart_and_empty_chart_still_renders() {
        assert!(standard_charts("x", &Series::default()).is_empty());
        let chart = Chart {
            title: "empty".into(),
            y_label: "ms".into(),
            lines: vec![],
        };
        assert!(chart.svg().expect("svg").contains("<svg"));
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short_number(1_250_000.0), "1.25M");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(0.25), "0.25");
    }
}
