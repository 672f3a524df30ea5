//! Positions persisted behind the live path, read back after a restart.

use std::time::Duration;

use quiver_client::Position;

use super::{config, metric, next_event, tracker};
use crate::support::{TestServer, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_persisted_behind_the_live_path_and_survive_a_restart() {
    let data = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), &config()).await;
    let courier = tracker(&server, "courier", &["truck-*"]).await;
    courier
        .track(
            "track:depot",
            &Position::new("truck-1", 51.5, -0.12).at(1_700_000_000_500),
        )
        .await
        .expect("track");
    eventually(Duration::from_secs(10), async || {
        let (_, body) = server.http_get("/metrics").await;
        metric(&body, "quiver_positions_persisted_total") >= 1.0
    })
    .await;
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
