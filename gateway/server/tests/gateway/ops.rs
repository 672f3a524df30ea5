//! The operator surface: health, readiness, metrics.

use std::time::Duration;

use crate::support::{FAST, TestServer, eventually};

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let server = TestServer::start(FAST).await;
    assert_eq!(server.http_get("/healthz").await.0, 200);
    assert_eq!(server.http_get("/readyz").await.0, 200);

    let client = server.client("demo", "alice").await;
    let mut subscription = client.subscribe("m", None).await.expect("subscribe");
    client.publish("m", "x").await.expect("publish");
    subscription.next().await.expect("open").expect("message");

    let server = &server;
    eventually(Duration::from_secs(5), async || {
        let (status, body) = server.http_get("/metrics").await;
        status == 200
            && metric(&body, "quiver_connections") == Some(1.0)
            && metric(&body, "quiver_messages_published_total") == Some(1.0)
            && metric(&body, "quiver_messages_delivered_total") == Some(1.0)
    })
    .await;
    let (_, body) = server.http_get("/metrics").await;
    for name in [
        "quiver_publish_duration_seconds_count",
        "quiver_store_append_duration_seconds_count",
        "process_resident_memory_bytes",
    ] {
        assert!(
            metric(&body, name).is_some_and(|v| v > 0.0),
            "{name} missing or zero"
        );
    }
    assert_eq!(server.http_get("/nope").await.0, 404);
}
