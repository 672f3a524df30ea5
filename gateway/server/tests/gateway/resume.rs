//! The mobile reconnect story: resume with `since` after a dropped
//! connection, and the client's automatic reconnect across a restart.

use std::time::Duration;

use quiver_client::{Client, Reconnect, Subscription};

use crate::support::{FAST, TestServer};

async fn next_offset(subscription: &mut Subscription) -> u64 {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("message in time")
        .expect("subscription open")
        .expect("message")
        .offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_resumes_after_a_dropped_connection_with_no_gap_and_no_duplicate() {
    let server = TestServer::start(FAST).await;
    let publisher = server.client("demo", "writer").await;
    let phone = server.client("demo", "phone").await;
    let mut subscription = phone.subscribe("feed", None).await.expect("subscribe");
    for i in 0..50 {
        publisher
            .publish("feed", format!("{i}"))
            .await
            .expect("publish");
    }
    let mut last = 0;
    for expected in 1..=50 {
        last = next_offset(&mut subscription).await;
        assert_eq!(last, expected);
    }
    // The phone loses its connection (network change) ...
    drop(subscription);
    phone.close().await;
    // ... while the channel moves on.
    for i in 50..100 {
        publisher
            .publish("feed", format!("{i}"))
            .await
            .expect("publish");
    }
    // It reconnects and resumes while publishing continues concurrently, so
    // the replay from the log and the live stream overlap.
    let live = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            for i in 100..150 {
                publisher
                    .publish("feed", format!("{i}"))
                    .await
                    .expect("publish");
            }
        }
    });
    let phone = server.client("demo", "phone").await;
    let mut resumed = phone
        .subscribe("feed", Some(last))
        .await
        .expect("resubscribe");
    for expected in 51..=150 {
        assert_eq!(
            next_offset(&mut resumed).await,
            expected,
            "no gap, no duplicate"
        );
    }
    live.await.expect("publisher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_zero_replays_everything_and_no_since_starts_live() {
    let server = TestServer::start(FAST).await;
    let client = server.client("demo", "alice").await;
    for i in 0..5 {
        client.publish("c", format!("{i}")).await.expect("publish");
    }
    let mut from_start = client
        .subscribe("c", Some(0))
        .await
        .expect("subscribe since 0");
    for expected in 1..=5 {
        assert_eq!(next_offset(&mut from_start).await, expected);
    }
    let other = server.client("demo", "bob").await;
    let mut live = other.subscribe("c", None).await.expect("live subscribe");
    assert_eq!(live.head_offset(), 5);
    client.publish("c", "6").await.expect("publish");
    assert_eq!(next_offset(&mut live).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_goaway_and_resumes_every_subscription() {
    let data = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), FAST).await;
    let addr = server.addr;
    let config = server
        .client_config("demo", "phone")
        .reconnect(Reconnect::default());
    let phone = Client::connect(config).await.expect("connect");
    let mut subscription = phone.subscribe("rides", None).await.expect("subscribe");
    let publisher = server.client("demo", "backend").await;
    for i in 0..10 {
        publisher
            .publish("rides", format!("{i}"))
            .await
            .expect("publish");
    }
    for expected in 1..=10 {
        assert_eq!(next_offset(&mut subscription).await, expected);
    }
    drop(publisher);
    // Graceful restart on the same address and data: GoAway, then back.
    server.stop().await;
    let restarted = TestServer::start_on(data, FAST, addr).await;
    let publisher = restarted.client("demo", "backend").await;
    for i in 10..20 {
        publisher
            .publish("rides", format!("{i}"))
            .await
            .expect("publish after restart");
    }
    for expected in 11..=20 {
        assert_eq!(next_offset(&mut subscription).await, expected);
    }
}
