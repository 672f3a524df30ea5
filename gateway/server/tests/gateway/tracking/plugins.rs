//! On-track plugins on a real gateway.

use std::time::Duration;

use quiver_client::Position;

use super::{config, next_event, tracker};
use crate::support::TestServer;

/// The geofence example plugin on a real gateway: exactly one alert message
/// per crossing, published to the channel its config names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_geofence_plugin_raises_exactly_one_alert_per_crossing() {
    let server = TestServer::start(&config()).await;
    let fence =
        r#"{"polygon":[[0,0],[0,1],[1,1],[1,0]],"alert_channel":"alerts:depot","name":"depot"}"#;
    crate::plugins::upload_ok(&server, "demo", "geofence", "geofence", Some(fence)).await;
    let ops = server.client("demo", "ops").await;
    let mut alerts = ops
        .subscribe("alerts:depot", None)
        .await
        .expect("subscribe");
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:yard", 0).await.expect("watch");
    let courier = tracker(&server, "courier", &["van-*"]).await;
    // outside, inside, inside, outside, outside, inside
    let path = [
        (2.0, 2.0),
        (0.5, 0.5),
        (0.6, 0.5),
        (1.5, 0.5),
        (1.6, 0.5),
        (0.5, 0.4),
    ];
    for (i, (lat, lon)) in path.into_iter().enumerate() {
        let position = Position::new("van-3", lat, lon).at(1_700_000_000_000 + i as u64 * 1000);
        courier.track("track:yard", &position).await.expect("track");
        // One at a time, so each crossing is judged against the last.
        let event = next_event(&mut watch, Duration::from_secs(10))
            .await
            .expect("position");
        assert_eq!(event.position.lat, lat);
    }
    let mut events = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), alerts.next()).await
    {
        let message = message.expect("alert");
        let alert: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("json alert");
        assert_eq!(alert["fence"], "depot");
        assert_eq!(alert["entity"], "van-3");
        events.push(alert["event"].as_str().expect("event").to_owned());
    }
    assert_eq!(events, ["enter", "leave", "enter"]);
}
