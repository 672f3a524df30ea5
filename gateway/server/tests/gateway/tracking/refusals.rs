//! Refused and malformed positions: dropped, counted, and harmless.

use std::time::Duration;

use quiver_client::{ErrorCode, Position};

use super::{config, next_event, tracker};
use crate::support::{TestServer, eventually, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_malformed_positions_are_dropped_and_counted_and_nothing_breaks() {
    let server = TestServer::start(&config()).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:city", 0).await.expect("watch");
    // No `track` claim: the entity is not this user's to report.
    let stranger = server.client("demo", "stranger").await;
    stranger
        .track("track:city", &Position::new("courier-1", 1.0, 1.0))
        .await
        .expect("sent");
    // Not a tracking channel.
    let courier = tracker(&server, "courier", &["courier-1"]).await;
    courier
        .track("chat:lobby", &Position::new("courier-1", 1.0, 1.0))
        .await
        .expect("sent");
    // Out of range.
    courier
        .track("track:city", &Position::new("courier-1", 91.0, 1.0))
        .await
        .expect("sent");
    // Garbage and a non-Track frame as datagrams, from a raw connection.
    let raw =
        crate::raw::Raw::authenticated(server.addr, &server.ca(), &server.token("demo", "raw"))
            .await;
    raw.connection
        .send_datagram(bytes::Bytes::from_static(b"\x05\x00\x00\x00garbage"))
        .expect("datagram");
    let hello = quiver_proto::Encoder::new().hello(1, "x", "y");
    raw.connection.send_datagram(hello).expect("datagram");
    eventually(Duration::from_secs(5), async || {
        let (_, body) = server.http_get("/metrics").await;
        metric(
            &body,
            r#"quiver_positions_dropped_total{reason="forbidden"}"#,
        ) >= Some(1.0)
            && metric(
                &body,
                r#"quiver_positions_dropped_total{reason="wrong_channel_kind"}"#,
            ) >= Some(1.0)
            && metric(&body, r#"quiver_positions_dropped_total{reason="invalid"}"#) >= Some(1.0)
            && metric(
                &body,
                r#"quiver_positions_dropped_total{reason="malformed"}"#,
            ) >= Some(2.0)
    })
    .await;
    // None of it reached the watcher, and every connection still works.
    assert!(
        next_event(&mut watch, Duration::from_millis(300))
            .await
            .is_none()
    );
    courier
        .track("track:city", &Position::new("courier-1", 1.5, 1.5))
        .await
        .expect("sent");
    let event = next_event(&mut watch, Duration::from_secs(5))
        .await
        .expect("valid position");
    assert_eq!(event.position.lat, 1.5);
    let ack = stranger
        .publish("chat:lobby", "still here")
        .await
        .expect("publish");
    assert!(ack.offset >= 1);
    // Messages are not for tracking channels.
    let refused = courier
        .publish("track:city", "hello")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Some(ErrorCode::WrongChannelKind));
}
