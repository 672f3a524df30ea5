//! Connection loss, GoAway and SlowConsumer: the stream continues with no
//! gap and no duplicate, and in-flight requests survive.

use quiver_client::{Client, ClientError, ClientEvent, Reconnect};
use tokio::time::timeout;

use crate::mock::MockServer;
use crate::{WAIT, next_message, offsets};

/// Waits until the client has reconnected `n` times in total.
async fn reconnected(client: &Client, n: u64) {
    let mut events = client.events();
    timeout(WAIT, async {
        while client.reconnect_count() < n {
            let _ = events.recv().await;
        }
    })
    .await
    .expect("reconnect in time");
}

#[tokio::test]
async fn resumes_after_connection_loss_without_gap_or_duplicate() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    let publisher = Client::connect(server.config("bob").reconnect(Reconnect::disabled()))
        .await
        .expect("publisher");
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    for _ in 0..3 {
        publisher.publish("room", "before").await.expect("publish");
    }
    // Two delivered, the third still queued when the connection dies.
    assert_eq!(offsets(&mut sub, 2).await, [1, 2]);
    server.kill_connections();
    reconnected(&client, 1).await;

    let publisher = Client::connect(server.config("bob"))
        .await
        .expect("publisher again");
    publisher.publish("room", "after").await.expect("publish");
    publisher.publish("room", "after").await.expect("publish");
    assert_eq!(offsets(&mut sub, 3).await, [3, 4, 5]);
    assert_eq!(server.accepted(), 4);
}

#[tokio::test]
async fn in_flight_publish_is_resent_with_its_key() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    server.lose_next_ack();
    let ack = client
        .publish("room", "once")
        .await
        .expect("publish survives");
    assert!(ack.duplicate, "the re-send must hit the stored copy");
    assert_eq!(ack.offset, 1);
    assert_eq!(server.stored("room"), 1);
    assert_eq!(client.reconnect_count(), 1);
}

#[tokio::test]
async fn goaway_reconnects_and_resumes() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    let mut events = client.events();
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    client.publish("room", "1").await.expect("publish");
    assert_eq!(next_message(&mut sub).await.offset, 1);

    server.go_away(50);
    reconnected(&client, 1).await;
    let mut saw_goaway = false;
    while let Ok(event) = events.try_recv() {
        saw_goaway |= matches!(event, ClientEvent::GoAway { .. });
    }
    assert!(saw_goaway);
    client
        .publish("room", "2")
        .await
        .expect("publish after goaway");
    assert_eq!(next_message(&mut sub).await.offset, 2);
}

#[tokio::test]
async fn slow_consumer_reconnects_and_resumes() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    let mut sub = client.subscribe("room", Some(0)).await.expect("subscribe");
    client.publish("room", "1").await.expect("publish");
    server.slow_consumer();
    reconnected(&client, 1).await;
    client.publish("room", "2").await.expect("publish");
    assert_eq!(offsets(&mut sub, 2).await, [1, 2]);
}

#[tokio::test]
async fn without_reconnect_loss_fails_everyone() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice").reconnect(Reconnect::disabled()))
        .await
        .expect("connect");
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    server.kill_connections();
    match timeout(WAIT, sub.next()).await.expect("ends") {
        Some(Err(ClientError::ConnectionLost { gave_up: false, .. })) => {}
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    assert!(timeout(WAIT, sub.next()).await.expect("ends").is_none());
    let error = client.publish("room", "x").await.expect_err("lost");
    assert!(
        matches!(error, ClientError::ConnectionLost { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_protocol_violation_reconnects_and_resumes() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    client.publish("room", "1").await.expect("publish");
    assert_eq!(next_message(&mut sub).await.offset, 1);
    server.send_unexpected_frame();
    reconnected(&client, 1).await;
    client.publish("room", "2").await.expect("publish");
    assert_eq!(next_message(&mut sub).await.offset, 2);
}
