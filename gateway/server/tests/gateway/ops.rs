//! The operator surface: health, readiness, metrics.

use std::time::Duration;

use crate::support::{FAST, TestServer, eventually, metric};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_refuses_new_requests_and_keeps_acked_messages() {
    use quiver_proto::fb::ErrorCode;
    use quiver_proto::{Body, Encoder, NO_HEADERS};

    let data = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), FAST).await;
    let ops = server.ops;
    let mut raw =
        crate::raw::Raw::authenticated(server.addr, &server.ca(), &server.token("demo", "a")).await;
    let mut encoder = Encoder::new();
    raw.write(encoder.publish(1, "c", b"before", NO_HEADERS, None))
        .await;
    let ack = raw.next_frame().await.expect("ack");
    assert!(matches!(
        quiver_proto::decode(&ack),
        Ok(Body::PublishAck(_))
    ));

    let stopping = tokio::spawn(server.stop());
    let frame = raw.next_frame().await.expect("GoAway");
    let Ok(Body::GoAway(go_away)) = quiver_proto::decode(&frame) else {
        panic!("expected GoAway")
    };
    assert_eq!(go_away.code(), ErrorCode::GoingAway);
    assert!(go_away.reconnect_after_ms() > 0);
    // Not ready any more while draining.
    let (status, _) = crate::support::http_get(ops, "/readyz").await;
    assert_eq!(status, 503);
    raw.write(encoder.publish(2, "c", b"after", NO_HEADERS, None))
        .await;
    let frame = raw.next_frame().await.expect("refusal");
    let Ok(Body::Error(error)) = quiver_proto::decode(&frame) else {
        panic!("expected Error")
    };
    assert_eq!(
        (error.code(), error.fatal(), error.retryable()),
        (ErrorCode::GoingAway, false, true)
    );
    // The grace period ends with a close carrying GoingAway.
    let closed = tokio::time::timeout(Duration::from_secs(10), raw.connection.closed())
        .await
        .expect("closed");
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == u32::from(ErrorCode::GoingAway.0).into()),
        "{closed}"
    );
    stopping.await.expect("stopped");

    let server = TestServer::start_in(data, FAST).await;
    let client = server.client("demo", "a").await;
    let page = client
        .history("c", quiver_client::HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(&page.messages[0].payload[..], b"before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_requires_the_admin_token() {
    let server = TestServer::start(FAST).await;
    let token =
        std::fs::read_to_string(quiver_server::tenants::admin_token_path(server.data.path()))
            .expect("admin token created in the data dir");
    let (status, body) =
        crate::support::http_get_with(server.api, "/v1/tenants/demo/plugins", None).await;
    assert_eq!(status, 401);
    assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
    let (status, _) =
        crate::support::http_get_with(server.api, "/v1/tenants/demo/plugins", Some("wrong-token"))
            .await;
    assert_eq!(status, 401);
    let (status, body) =
        crate::support::http_get_with(server.api, "/v1/tenants/nobody/plugins", Some(token.trim()))
            .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        crate::support::http_get_with(server.api, "/v1/nothing-here", Some(token.trim())).await;
    assert_eq!(status, 404, "{body}");
}
