//! The geofence example (plugins/examples/geofence) in the real host: the
//! real component, its side kept in the real embedded store.

use quiver_plugin_host::{Hook, Position, SessionInfo, TrackAlert, TrackVerdict};
use quiver_storage::{KeyValueStore, KvScope};
use serde_json::{Value, json};

use crate::support::{Harness, session};

/// A square of about 2.2 km around (51.51, -0.12), closed as GeoJSON does.
const CONFIG: &str = r#"{
    "polygon": [[51.50, -0.13], [51.50, -0.11], [51.52, -0.11], [51.52, -0.13], [51.50, -0.13]],
    "alert_channel": "alerts:depot",
    "name": "depot"
}"#;

const INSIDE: (f64, f64) = (51.51, -0.12);
const OUTSIDE: (f64, f64) = (51.53, -0.12);

fn position(entity: &str, (lat, lon): (f64, f64), timestamp_ms: u64) -> Position {
    Position {
        entity: entity.into(),
        lat,
        lon,
        accuracy: Some(4.0),
        heading: None,
        speed: None,
        timestamp_ms,
    }
}

/// Runs the tenant's on-track chain; the position must be accepted.
async fn track(
    h: &Harness,
    s: &SessionInfo,
    channel: &str,
    entity: &str,
    at: (f64, f64),
    timestamp_ms: u64,
) -> Vec<TrackAlert> {
    let p = position(entity, at, timestamp_ms);
    match h.host.on_track(s, channel, &p).await {
        TrackVerdict::Accept { alerts } => alerts,
        other => panic!("position {p:?}: expected Accept, got {other:?}"),
    }
}

/// The one alert in `alerts`, checked to come from plugin `fence` on the
/// configured channel, as parsed JSON.
fn only_alert(alerts: Vec<TrackAlert>) -> Value {
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(&*alert.plugin, "fence");
    assert_eq!(alert.channel, "alerts:depot");
    serde_json::from_slice(&alert.payload).expect("the alert is JSON")
}

fn alert_json(entity: &str, event: &str, (lat, lon): (f64, f64), timestamp_ms: u64) -> Value {
    json!({
        "fence": "depot",
        "entity": entity,
        "event": event,
        "lat": lat,
        "lon": lon,
        "timestamp_ms": timestamp_ms,
    })
}

fn alerts_counted(h: &Harness, plugin: &str) -> f64 {
    h.metric(
        "quiver_plugin_custom_total",
        &[("plugin", plugin), ("name", "geofence_alerts")],
    )
}

#[tokio::test]
async fn geofence_alerts_once_per_crossing() {
    let h = Harness::new().await;
    h.install("acme", "fence", "geofence", Some(CONFIG)).await;
    let s = session("acme", "courier-7");
    // The manifest lists on-track only.
    let hooks = h.host.hooks("acme");
    assert!(hooks.contains(Hook::Track));
    assert!(!hooks.contains(Hook::Connect));
    assert!(!hooks.contains(Hook::Subscribe));
    assert!(!hooks.contains(Hook::Publish));

    let path = [
        (OUTSIDE, None), // first sighting, outside: remembered, not alerted
        (INSIDE, Some("enter")),
        (INSIDE, None),
        (OUTSIDE, Some("leave")),
        (OUTSIDE, None),
        (INSIDE, Some("enter")),
    ];
    for (i, (at, event)) in path.into_iter().enumerate() {
        let ts = 1_700_000_000_000 + i as u64 * 1000;
        let alerts = track(&h, &s, "fleet", "courier-7", at, ts).await;
        match event {
            None => assert!(alerts.is_empty(), "position {i}: {alerts:?}"),
            Some(event) => assert_eq!(
                only_alert(alerts),
                alert_json("courier-7", event, at, ts),
                "position {i}"
            ),
        }
    }
    assert_eq!(alerts_counted(&h, "fence"), 3.0);

    // The side lives in the plugin's kv scope (with a TTL, not visible here).
    let stored = h
        .store
        .kv_get(&KvScope::new("acme", "fence"), "side:5:fleet:courier-7")
        .await
        .unwrap()
        .expect("the side is stored");
    assert!(stored.starts_with(b"in:"), "{stored:?}");

    // Nothing failed along the way.
    let errors = h.metric("quiver_plugin_errors_total", &[("plugin", "fence")]);
    assert_eq!(errors, 0.0);
}

#[tokio::test]
async fn geofence_tracks_entities_and_channels_independently() {
    let h = Harness::new().await;
    h.install("acme", "fence", "geofence", Some(CONFIG)).await;
    let s = session("acme", "dispatcher");

    // courier-7 starts outside (no alert); van-2 starts inside, which is
    // an enter on first sighting.
    assert!(
        track(&h, &s, "fleet", "courier-7", OUTSIDE, 1)
            .await
            .is_empty()
    );
    let first = only_alert(track(&h, &s, "fleet", "van-2", INSIDE, 2).await);
    assert_eq!(first, alert_json("van-2", "enter", INSIDE, 2));

    // van-2 being inside does not make courier-7's entry a non-event, and
    // courier-7 entering does not touch van-2.
    let entered = only_alert(track(&h, &s, "fleet", "courier-7", INSIDE, 3).await);
    assert_eq!(entered, alert_json("courier-7", "enter", INSIDE, 3));
    assert!(track(&h, &s, "fleet", "van-2", INSIDE, 4).await.is_empty());
    let left = only_alert(track(&h, &s, "fleet", "van-2", OUTSIDE, 5).await);
    assert_eq!(left, alert_json("van-2", "leave", OUTSIDE, 5));
    assert!(
        track(&h, &s, "fleet", "courier-7", INSIDE, 6)
            .await
            .is_empty()
    );

    // The same entity name on another tracking channel is another entity.
    let other = only_alert(track(&h, &s, "fleet-b", "courier-7", INSIDE, 7).await);
    assert_eq!(other, alert_json("courier-7", "enter", INSIDE, 7));

    // Another tenant's plugin of the same name shares nothing either.
    h.install("globex", "fence", "geofence", Some(CONFIG)).await;
    let g = session("globex", "dispatcher");
    let theirs = only_alert(track(&h, &g, "fleet", "van-2", INSIDE, 8).await);
    assert_eq!(theirs, alert_json("van-2", "enter", INSIDE, 8));

    assert_eq!(
        h.metric(
            "quiver_plugin_custom_total",
            &[("tenant", "acme"), ("name", "geofence_alerts")]
        ),
        4.0
    );
}

#[tokio::test]
async fn geofence_with_a_bad_config_accepts_everything_without_trapping() {
    let h = Harness::new().await;
    let bad_configs = [
        // No polygon at all.
        r#"{"alert_channel": "alerts"}"#,
        // Too few vertices (the closing one does not count).
        r#"{"polygon": [[51.50, -0.13], [51.52, -0.11], [51.50, -0.13]], "alert_channel": "alerts"}"#,
        // Not numbers.
        r#"{"polygon": [["51.50", "-0.13"], ["51.50", "-0.11"], ["51.52", "-0.11"]], "alert_channel": "alerts"}"#,
        // Not pairs.
        r#"{"polygon": [51.50, -0.13, 51.50, -0.11, 51.52, -0.11], "alert_channel": "alerts"}"#,
        // Not degrees.
        r#"{"polygon": [[151.50, -0.13], [51.50, -0.11], [51.52, -0.11]], "alert_channel": "alerts"}"#,
        // A good polygon but nowhere to alert.
        r#"{"polygon": [[51.50, -0.13], [51.50, -0.11], [51.52, -0.11], [51.52, -0.13]]}"#,
    ];
    for (i, config) in bad_configs.into_iter().enumerate() {
        let tenant = format!("t{i}");
        // The upload itself succeeds: the config is a valid JSON object,
        // and the plugin only reads it on its first call.
        h.install(&tenant, "fence", "geofence", Some(config)).await;
        let s = session(&tenant, "courier");
        for (j, at) in [OUTSIDE, INSIDE, OUTSIDE, INSIDE].into_iter().enumerate() {
            let alerts = track(&h, &s, "fleet", "courier-7", at, j as u64).await;
            assert!(alerts.is_empty(), "config {i}, position {j}: {alerts:?}");
        }
        let labels = [("tenant", tenant.as_str()), ("plugin", "fence")];
        assert_eq!(
            h.metric("quiver_plugin_errors_total", &labels),
            0.0,
            "config {i}"
        );
        let calls = [
            ("tenant", tenant.as_str()),
            ("plugin", "fence"),
            ("hook", "on-track"),
        ];
        assert_eq!(
            h.metric("quiver_plugin_calls_total", &calls),
            4.0,
            "config {i}"
        );
        // Nothing was remembered either.
        let stored = h
            .store
            .kv_get(
                &KvScope::new(tenant.as_str(), "fence"),
                "side:5:fleet:courier-7",
            )
            .await
            .unwrap();
        assert_eq!(stored, None, "config {i}");
    }
    assert_eq!(alerts_counted(&h, "fence"), 0.0);
}
