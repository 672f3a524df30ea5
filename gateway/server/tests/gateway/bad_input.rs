//! Bad input: each is refused with its error code, the offender's
//! connection closes, nothing panics, and another client on the same
//! server keeps publishing and receiving throughout.

use std::time::Duration;

use bytes::Bytes;
use flatbuffers::FlatBufferBuilder;
use quiver_client::{Client, ErrorCode as ClientCode, Subscription};
use quiver_proto::fb::{self, ErrorCode};
use quiver_proto::{Encoder, NO_HEADERS};
use quiver_session::Claims;

use crate::raw::Raw;
use crate::support::{TestServer, now_secs};

const LIMITS: &str = r#"
[limits]
publish_rate_per_sec = 100000
publish_burst = 100000
max_frame_bytes = 65536
max_payload_bytes = 4096
max_subscriptions = 4
handshake_timeout_ms = 500

[server]
channel_buffer = 16
"#;

/// A well-behaved client that must keep being served.
struct Witness {
    client: Client,
    subscription: Subscription,
    sent: u64,
}

impl Witness {
    async fn new(server: &TestServer) -> Witness {
        let client = server.client("demo", "witness").await;
        let subscription = client.subscribe("witness", None).await.expect("subscribe");
        Witness {
            client,
            subscription,
            sent: 0,
        }
    }

    async fn still_served(&mut self) {
        self.sent += 1;
        let ack = self
            .client
            .publish("witness", format!("{}", self.sent))
            .await
            .expect("witness publishes");
        assert_eq!(ack.offset, self.sent);
        let message = tokio::time::timeout(Duration::from_secs(5), self.subscription.next())
            .await
            .expect("witness receives in time")
            .expect("open")
            .expect("message");
        assert_eq!(message.offset, self.sent);
    }
}

fn corrupt(frame: &[u8], needle: &str) -> Bytes {
    let mut bytes = frame.to_vec();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("needle in frame");
    bytes[at] = 0xff;
    Bytes::from(bytes)
}

fn unknown_frame_type() -> Bytes {
    let mut fbb = FlatBufferBuilder::new();
    let body = fb::Unsubscribe::create(&mut fbb, &fb::UnsubscribeArgs::default()).as_union_value();
    let frame = fb::Frame::create(
        &mut fbb,
        &fb::FrameArgs {
            body_type: fb::Body(200),
            body: Some(body),
        },
    );
    fbb.finish_size_prefixed(frame, None);
    Bytes::copy_from_slice(fbb.finished_data())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_refused_with_their_codes() {
    let server = TestServer::start(LIMITS).await;
    let mut witness = Witness::new(&server).await;
    let token = server.token("demo", "mallory");
    let ca = server.ca();

    // Garbage where the Hello should be.
    let mut raw = Raw::connect(server.addr, &ca).await;
    raw.write(Bytes::from_static(b"\x10\x00\x00\x00GARBAGE-GARBAGE!"))
        .await;
    raw.expect_fatal(ErrorCode::MalformedFrame).await;
    witness.still_served().await;

    // Garbage after a valid handshake.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    raw.write(Bytes::from_static(
        b"\x08\x00\x00\x00\xde\xad\xbe\xef\xde\xad\xbe\xef",
    ))
    .await;
    raw.expect_fatal(ErrorCode::MalformedFrame).await;
    witness.still_served().await;

    // A frame cut short by the end of the stream.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    let frame = Encoder::new().publish(1, "room", b"hello", NO_HEADERS, None);
    raw.write(frame.slice(..frame.len() - 5)).await;
    raw.send.finish().expect("finish");
    raw.expect_fatal(ErrorCode::TruncatedFrame).await;
    witness.still_served().await;

    // A frame type from the future.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    raw.write(unknown_frame_type()).await;
    raw.expect_fatal(ErrorCode::UnknownFrame).await;
    witness.still_served().await;

    // A length prefix over max_frame_bytes: refused before the body arrives.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    raw.write(Bytes::copy_from_slice(&(1u32 << 20).to_le_bytes()))
        .await;
    raw.expect_fatal(ErrorCode::FrameTooLarge).await;
    witness.still_served().await;

    // A channel name that is not UTF-8.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    let frame = Encoder::new().publish(1, "ZZZZ", b"hello", NO_HEADERS, None);
    raw.write(corrupt(&frame, "ZZZZ")).await;
    let message = raw.expect_fatal(ErrorCode::InvalidUtf8).await;
    assert!(message.contains("channel"), "names the field: {message}");
    witness.still_served().await;

    // A server-only frame sent by a client.
    let mut raw = Raw::authenticated(server.addr, &ca, &token).await;
    raw.write(Encoder::new().publish_ack(1, 1, 1, false)).await;
    raw.expect_fatal(ErrorCode::UnexpectedFrame).await;
    witness.still_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_silence_are_refused() {
    let server = TestServer::start(LIMITS).await;
    let mut witness = Witness::new(&server).await;
    let ca = server.ca();
    let claims = |exp| Claims {
        sub: "mallory".into(),
        tenant: "demo".into(),
        exp,
        nbf: None,
        subscribe: None,
        publish: None,
        track: None,
    };
    let cases = [
        ("not-a-jwt".to_string(), ErrorCode::Unauthorized),
        (
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtIiwidGVuYW50IjoiZGVtbyIsImV4cCI6OTk5OTk5OTk5OX0.".into(),
            ErrorCode::Unauthorized,
        ),
        (claims(now_secs() + 60).sign_hs256(b"guessed").expect("sign"), ErrorCode::Unauthorized),
        (server.token_with(claims(now_secs() - 3600)), ErrorCode::TokenExpired),
    ];
    for (token, code) in cases {
        let mut raw = Raw::connect(server.addr, &ca).await;
        raw.write(Encoder::new().hello(1, &token, "raw")).await;
        raw.expect_fatal(code).await;
        witness.still_served().await;
    }

    // A wrong protocol version.
    let mut raw = Raw::connect(server.addr, &ca).await;
    raw.write(Encoder::new().hello(99, &server.token("demo", "m"), "raw"))
        .await;
    raw.expect_fatal(ErrorCode::UnsupportedVersion).await;

    // A client that connects and never says Hello.
    let raw = Raw::connect(server.addr, &ca).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), raw.connection.closed())
        .await
        .expect("closed after the handshake timeout");
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == u32::from(ErrorCode::HandshakeTimeout.0).into()),
        "{closed}"
    );
    witness.still_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limits_refuse_the_request_and_keep_the_connection() {
    let server = TestServer::start(LIMITS).await;
    let client = server.client("demo", "alice").await;
    let error = client
        .publish("room", vec![0u8; 5000])
        .await
        .expect_err("too large");
    assert_eq!(error.code(), Some(ClientCode::PayloadTooLarge));
    let error = client
        .publish("bad channel", "x")
        .await
        .expect_err("invalid channel");
    assert_eq!(error.code(), Some(ClientCode::InvalidChannel));
    let mut subscriptions = Vec::new();
    for i in 0..4 {
        subscriptions.push(
            client
                .subscribe(&format!("c{i}"), None)
                .await
                .expect("subscribe"),
        );
    }
    let error = client
        .subscribe("c4", None)
        .await
        .expect_err("fifth subscription");
    assert_eq!(error.code(), Some(ClientCode::TooManySubscriptions));
    // Still connected and working.
    assert_eq!(
        client
            .publish("room", "fine")
            .await
            .expect("publish")
            .offset,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_rate_limit_is_enforced_per_connection() {
    let server = TestServer::start("[limits]\npublish_rate_per_sec = 1\npublish_burst = 3\n").await;
    let client = server.client("demo", "alice").await;
    for _ in 0..3 {
        client.publish("room", "x").await.expect("within burst");
    }
    let error = client
        .publish("room", "x")
        .await
        .expect_err("over the rate");
    assert_eq!(error.code(), Some(ClientCode::RateLimited));
    assert!(error.retry_after().is_some_and(|d| d > Duration::ZERO));
    // Another connection has its own bucket.
    let other = server.client("demo", "bob").await;
    other.publish("room", "y").await.expect("other connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_disconnected_and_memory_stays_bounded() {
    let server = TestServer::start(LIMITS).await;
    let mut witness = Witness::new(&server).await;
    // Subscribes, then never reads its subscription stream.
    let mut slow =
        Raw::authenticated(server.addr, &server.ca(), &server.token("demo", "slow")).await;
    slow.write(Encoder::new().subscribe(1, "busy", None)).await;
    let subscribed = slow.next_frame().await.expect("Subscribed");
    assert!(matches!(
        quiver_proto::decode(&subscribed),
        Ok(quiver_proto::Body::Subscribed(_))
    ));

    let publisher = server.client("demo", "firehose").await;
    let payload = vec![7u8; 4000];
    let mut published = 0;
    let closed = loop {
        publisher
            .publish("busy", payload.clone())
            .await
            .expect("publish");
        published += 1;
        if let Some(reason) = slow.connection.close_reason() {
            break reason;
        }
        assert!(published < 5_000, "slow consumer never disconnected");
    };
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == u32::from(ErrorCode::SlowConsumer.0).into()),
        "{closed}"
    );
    witness.still_served().await;
}
