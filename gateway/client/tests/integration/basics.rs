//! Connecting, the request/response calls and subscriptions on a healthy
//! connection.

use std::time::Instant;

use quiver_client::{
    Client, ClientConfig, ClientError, HistoryQuery, PublishOptions, Reconnect, Trust,
};
use tokio::time::{Duration, timeout};

use crate::mock::{BAD_TOKEN, MockServer};
use crate::{WAIT, next_message, offsets};

#[tokio::test]
async fn publish_subscribe_and_history_round_trip() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    assert_eq!(client.welcome().user, "alice");

    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    assert_eq!(sub.channel(), "room");
    let options = PublishOptions::new("hello").header("content-type", "text/plain");
    let ack = client.publish_with("room", options).await.expect("publish");
    assert!(!ack.duplicate);
    client.publish("room", "world").await.expect("publish");

    let first = next_message(&mut sub).await;
    assert_eq!(
        (first.offset, &first.payload[..]),
        (ack.offset, &b"hello"[..])
    );
    assert_eq!(first.sender, "alice");
    assert_eq!(
        first.headers,
        vec![("content-type".into(), "text/plain".into())]
    );
    assert_eq!(&*first.channel, "room");
    assert_eq!(next_message(&mut sub).await.offset, ack.offset + 1);
    assert_eq!(sub.last_offset(), Some(ack.offset + 1));

    let page = client
        .history("room", HistoryQuery::latest(1))
        .await
        .expect("history");
    assert!(page.has_more);
    assert_eq!(page.messages.len(), 1);
    assert_eq!(&page.messages[0].payload[..], b"world");
    client.close().await;
}

#[tokio::test]
async fn subscribe_since_replays_then_goes_live() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    for i in 0..3 {
        client
            .publish("room", format!("m{i}"))
            .await
            .expect("publish");
    }
    let mut sub = client.subscribe("room", Some(1)).await.expect("subscribe");
    assert_eq!(sub.head_offset(), 3);
    client.publish("room", "live").await.expect("publish");
    assert_eq!(offsets(&mut sub, 3).await, [2, 3, 4]);
    sub.unsubscribe().await.expect("unsubscribe");
    assert_eq!(server.unsubscribes(), 1);
    client.close().await;
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let server = MockServer::start().await;
    let client = Client::connect(server.config("alice"))
        .await
        .expect("connect");
    drop(client.subscribe("room", None).await.expect("subscribe"));
    let deadline = Instant::now() + WAIT;
    while server.unsubscribes() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.unsubscribes(), 1);
}

#[tokio::test]
async fn bad_token_is_refused_at_connect() {
    let server = MockServer::start().await;
    let error = Client::connect(server.config(BAD_TOKEN))
        .await
        .expect_err("refused");
    assert!(error.is_auth_failure(), "{error}");
}

#[tokio::test]
async fn unknown_certificate_is_refused() {
    let server = MockServer::start().await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let config = ClientConfig::new(
        server.addr.to_string(),
        "alice",
        Trust::CaDer(vec![other.cert.der().clone()]),
    );
    let error = Client::connect(config).await.expect_err("untrusted");
    assert!(matches!(error, ClientError::Connection(_)), "{error}");
}

#[tokio::test]
async fn insecure_trust_connects_to_any_certificate() {
    let server = MockServer::start().await;
    let config = ClientConfig::new(server.addr.to_string(), "alice", Trust::Insecure);
    let client = Client::connect(config).await.expect("connect");
    client.close().await;
}

#[tokio::test]
async fn connect_to_a_silent_port_times_out_promptly() {
    // A bound socket that never answers: QUIC gets no reply at all.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let config = ClientConfig::new(
        silent.local_addr().expect("addr").to_string(),
        "t",
        Trust::Insecure,
    )
    .connect_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = Client::connect(config).await.expect_err("nobody there");
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn close_ends_subscriptions_and_later_calls() {
    let server = MockServer::start().await;
    let config = server.config("alice").reconnect(Reconnect::disabled());
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    client.close().await;
    assert!(timeout(WAIT, sub.next()).await.expect("ends").is_none());
    let error = client.publish("room", "late").await.expect_err("closed");
    assert!(matches!(error, ClientError::Closed), "{error}");
}

#[tokio::test]
async fn clients_can_share_one_endpoint() {
    let server = MockServer::start().await;
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let a = Client::connect_with_endpoint(endpoint.clone(), server.config("a"))
        .await
        .expect("a");
    let b = Client::connect_with_endpoint(endpoint, server.config("b"))
        .await
        .expect("b");
    let mut sub = b.subscribe("room", None).await.expect("subscribe");
    a.publish("room", "from a").await.expect("publish");
    assert_eq!(next_message(&mut sub).await.sender, "a");
}

#[tokio::test]
async fn a_full_subscription_queue_delays_but_loses_nothing() {
    let server = MockServer::start().await;
    let config = server.config("alice").subscription_buffer(2);
    let client = Client::connect(config).await.expect("connect");
    let mut sub = client.subscribe("room", None).await.expect("subscribe");
    // Far more than the queue holds, published while nobody reads.
    for i in 0..200u32 {
        client
            .publish("room", i.to_be_bytes().to_vec())
            .await
            .expect("publish");
    }
    let expected: Vec<u64> = (1..=200).collect();
    assert_eq!(offsets(&mut sub, 200).await, expected);
}
