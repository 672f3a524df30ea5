//! Reading metric names out of PromQL: the vector selectors of an
//! expression, the queries of the Grafana dashboard and the alert rules,
//! and the sample names and labels of a Prometheus text exposition.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// One vector selector of a PromQL expression: a metric name and its
/// label matchers (label, value).
#[derive(Debug)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<(String, String)>,
}

/// Aggregations: a `by`/`without` clause may sit between the name and `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a list of label names in parentheses.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// Every vector selector in `expr`. Enough PromQL for dashboards and rules:
/// strings, ranges (`[5m]`), Grafana variables (`$instance`) and label
/// lists are skipped; a word that is not a function, aggregation or
/// keyword is a metric name.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let s = expr.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' | b'\'' | b'`' => i = skip_string(s, i),
            b'[' => i = skip_group(s, i),
            b'$' => i = skip_word(s, i + 1),
            b'0'..=b'9' | b'.' => i = skip_word(s, i),
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let end = skip_word(s, i);
                let word = &expr[i..end];
                let next = skip_space(s, end);
                i = end;
                if LABEL_LISTS.contains(&word) {
                    if s.get(next) == Some(&b'(') {
                        i = skip_group(s, next);
                    }
                } else if s.get(next) != Some(&b'(')
                    && !AGGREGATIONS.contains(&word)
                    && !KEYWORDS.contains(&word)
                {
                    let mut matchers = Vec::new();
                    if s.get(next) == Some(&b'{') {
                        (matchers, i) = parse_matchers(expr, next);
                    }
                    found.push(Selector {
                        metric: word.to_owned(),
                        matchers,
                    });
                }
            }
            _ => i += 1,
        }
    }
    found
}

fn skip_word(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i].is_ascii_alphanumeric() || b"_:.".contains(&s[i])) {
        i += 1;
    }
    i
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// From an opening quote to just past its closing quote.
fn skip_string(s: &[u8], start: usize) -> usize {
    let quote = s[start];
    let mut i = start + 1;
    while i < s.len() && s[i] != quote {
        if s[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// From `(` or `[` to just past its match, strings and nesting included.
fn skip_group(s: &[u8], start: usize) -> usize {
    let (open, close) = (s[start], if s[start] == b'(' { b')' } else { b']' });
    let mut depth = 0;
    let mut i = start;
    while i < s.len() {
        match s[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(s, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// `{label="value", other=~"a|b"}` from its `{`: the pairs and the index
/// just past `}`. Also reads the label sets of the text exposition format.
fn parse_matchers(text: &str, open: usize) -> (Vec<(String, String)>, usize) {
    let s = text.as_bytes();
    let mut pairs = Vec::new();
    let mut i = open + 1;
    loop {
        i = skip_space(s, i);
        match s.get(i) {
            None => return (pairs, s.len()),
            Some(b'}') => return (pairs, i + 1),
            Some(b',') => i += 1,
            Some(_) => {
                let end = skip_word(s, i);
                let label = text[i..end].to_owned();
                i = skip_space(s, end);
                while i < s.len() && b"=!~".contains(&s[i]) {
                    i += 1;
                }
                i = skip_space(s, i);
                if label.is_empty() || !matches!(s.get(i), Some(b'"' | b'\'' | b'`')) {
                    panic!("cannot read the label matchers in {text:?}");
                }
                let value_end = skip_string(s, i).min(s.len());
                let value = text[i + 1..value_end.saturating_sub(1).max(i + 1)].to_owned();
                pairs.push((label, value));
                i = value_end;
            }
        }
    }
}

/// The PromQL of every panel target and query variable of the dashboard.
pub fn dashboard_queries(dashboard: &Json) -> Vec<(String, String)> {
    fn panels(list: &Json, out: &mut Vec<(String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_else(|| {
                    panic!("dashboard panel {title:?} has a target without `expr`")
                });
                out.push((format!("dashboard panel {title:?}"), expr.to_owned()));
            }
            // Collapsed rows keep their panels inside them.
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str())
            .unwrap_or_default();
        // label_values(SELECTOR, label): the selector is PromQL.
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map_or(query, |(selector, _)| selector);
        let name = variable["name"].as_str().unwrap_or("?");
        out.push((format!("dashboard variable {name:?}"), selector.to_owned()));
    }
    out
}

/// The expression of every alert rule.
pub fn alert_queries(alerts: &Yaml) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for group in alerts["groups"].as_sequence().expect("alerts.yml: groups") {
        for rule in group["rules"].as_sequence().expect("alerts.yml: rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("every alert has an expr");
            out.push((format!("alert {name}"), expr.to_owned()));
        }
    }
    out
}

/// Sample names of a Prometheus text exposition, each with the label names
/// its samples carry.
pub fn scraped_families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = families.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            labels.extend(parse_matchers(line, end).0.into_iter().map(|(l, _)| l));
        }
    }
    families
}

#[test]
fn the_promql_reader_finds_metrics_and_skips_the_rest() {
    let found = selectors(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{instance=~"$instance", x="b{c}"}[$__rate_interval])))
           / on (instance) group_left clamp_min(b, 1) > 512 * 1024 unless absent(up{job="q"}) offset 5m"#,
    );
    let names: Vec<&str> = found.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["a_bucket", "b", "up"]);
    assert_eq!(
        found[0].matchers,
        [
            ("instance".to_owned(), "$instance".to_owned()),
            ("x".to_owned(), "b{c}".to_owned())
        ]
    );
    let families = scraped_families("# HELP h x\nh_bucket{le=\"0.1\"} 1\nplain 2\n");
    assert_eq!(families["h_bucket"], BTreeSet::from(["le".to_owned()]));
    assert!(families["plain"].is_empty());
}
