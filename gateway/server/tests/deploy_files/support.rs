//! Reading the files in `deploy/` and the durations written in them, and
//! notes shown in the test output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

pub fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(relative)
}

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("deploy/{relative}: {e}"))
}

pub fn yaml(relative: &str) -> Yaml {
    serde_yaml::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("deploy/{relative} is not valid YAML: {e}"))
}

pub fn dashboard() -> Json {
    serde_json::from_str(&read("grafana/quiver-dashboard.json"))
        .unwrap_or_else(|e| panic!("the dashboard is not valid JSON: {e}"))
}

/// `30s`, `1min`, `1m30s`, `20` (seconds): the systemd and compose forms used here.
pub fn duration(text: &str) -> Duration {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("duration {text:?}"));
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| digits + i);
        total += match &rest[digits..unit_end] {
            "ms" => Duration::from_millis(number),
            "s" | "sec" => Duration::from_secs(number),
            "m" | "min" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            unit => panic!("duration {text:?}: unknown unit {unit:?}"),
        };
        rest = &rest[unit_end..];
    }
    total
}
