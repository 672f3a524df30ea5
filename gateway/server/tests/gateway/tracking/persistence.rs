//! Positions persisted behind the live path, read back after a restart.

use std::time::Duration;

use quiver_client::Position;

use super::{config, next_event, tracker};
use crate::support::{TestServer, eventually, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_persisted_behind_the_live_path_and_survive_a_restart() {
    let data = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), &config()).await;
    let courier = tracker(&server, "courier", &["truck-*"]).await;
    for (lat, at) in [(51.4, 1_700_000_000_400), (51.5, 1_700_000_000_500)] {
        courier
            .track("track:depot", &Position::new("truck-1", lat, -0.12).at(at))
            .await
            .expect("track");
    }
    eventually(Duration::from_secs(10), async || {
        let (_, body) = server.http_get("/metrics").await;
        metric(&body, "quiver_positions_persisted_total") >= Some(2.0)
    })
    .await;
    // The stored history, newest first, over HTTP with the tenant's key.
    let key = quiver_server::tenants::dev_api_key(server.data.path()).expect("api key");
    let history = async |query: &str| {
        let path = format!("/v1/channels/track:depot/positions/truck-1{query}");
        let (status, body) = crate::support::http_get_with(server.api, &path, Some(&key)).await;
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        body["positions"]
            .as_array()
            .expect("positions")
            .iter()
            .map(|p| p["timestamp_ms"].as_u64().expect("timestamp"))
            .collect::<Vec<_>>()
    };
    assert_eq!(history("").await, [1_700_000_000_500, 1_700_000_000_400]);
    assert_eq!(
        history("?since_ms=1700000000450").await,
        [1_700_000_000_500]
    );
    assert_eq!(history("?limit=1").await, [1_700_000_000_500]);
    let (status, _) = crate::support::http_get_with(
        server.api,
        "/v1/channels/chat:lobby/positions/truck-1",
        Some(&key),
    )
    .await;
    assert_eq!(status, 409, "not a tracking channel");
    let long = format!("/v1/channels/track:depot/positions/{}", "e".repeat(300));
    for path in [
        "/v1/channels/track:depot/positions/truck-1?limit=0".to_owned(),
        long,
    ] {
        let (status, body) = crate::support::http_get_with(server.api, &path, Some(&key)).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    courier.close().await;
    server.stop().await;

    let server = TestServer::start_in(data, &config()).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:depot", 0).await.expect("watch");
    let event = next_event(&mut watch, Duration::from_secs(5))
        .await
        .expect("snapshot after restart");
    assert!(event.snapshot);
    assert_eq!(event.position.entity, "truck-1");
    assert_eq!(
        (event.position.lat, event.position.timestamp_ms),
        (51.5, 1_700_000_000_500)
    );
}
