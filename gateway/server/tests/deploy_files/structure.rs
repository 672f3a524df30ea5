//! The shape of the alert rules and the Grafana dashboard: what Prometheus
//! and Grafana accept, and what the runbooks and the datasource picker need.

use std::collections::BTreeSet;

use crate::support::{dashboard, yaml};

#[test]
fn every_alert_has_a_severity_and_its_annotations() {
    let alerts = yaml("prometheus/alerts.yml");
    let mut names = BTreeSet::new();
    for group in alerts["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            assert!(names.insert(name), "alert {name} is defined twice");
            let severity = rule["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("critical" | "warning")),
                "alert {name}: severity must be critical or warning"
            );
            for key in ["summary", "description", "runbook"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|text| !text.trim().is_empty()),
                    "alert {name} has no {key} annotation"
                );
            }
        }
    }
}

#[test]
fn the_dashboard_uses_its_datasource_variable_everywhere() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64() >= Some(36));
    assert!(dashboard["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a `datasource` variable of type datasource (prometheus)"
    );
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "{title}: duplicate id"
        );
        let grid = &panel["gridPos"];
        let right = grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99);
        assert!(right <= 24, "{title}: wider than the 24-column grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        let ref_ids: BTreeSet<_> = targets.iter().map(|t| t["refId"].as_str()).collect();
        assert_eq!(
            ref_ids.len(),
            targets.len(),
            "{title}: refIds must be unique"
        );
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}
