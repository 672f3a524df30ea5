//! Test helpers shared by every area.

use bytes::Bytes;
use quiver_proto::{Encoder, FrameReader, MessageRef, WelcomeInfo, fb};

/// A small deterministic PRNG (xorshift64*), so failures reproduce exactly
/// and the tests need no `rand`.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // xorshift is stuck at 0; any other seed works.
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` for tests; `n` must be > 0.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            *byte = self.next_u64() as u8;
        }
    }
}

/// Headers as a server might store them.
pub(crate) fn stored_headers() -> Vec<(String, String)> {
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("trace-id".to_owned(), "4bf92f3577b34da6".to_owned()),
    ]
}

pub(crate) fn welcome_info() -> WelcomeInfo {
    WelcomeInfo {
        version: 1,
        session_id: "01J9ZQ3V5X".to_owned(),
        tenant: "acme".to_owned(),
        user: "alice".to_owned(),
        server_time_ms: 1_700_000_000_123,
        max_frame_bytes: 1_048_576,
        max_payload_bytes: 65_536,
        max_subscriptions: 100,
        publish_rate_per_sec: 50,
        publish_burst: 100,
        idle_timeout_ms: 60_000,
        keepalive_interval_ms: 25_000,
    }
}

/// One valid frame of every type, with non-default values everywhere.
pub(crate) fn every_frame_type(enc: &mut Encoder) -> Vec<Bytes> {
    let headers = stored_headers();
    let pairs = || headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let message = |offset| MessageRef {
        offset,
        id: 0x0190_8f3a_1b2c_3d4e_5f60_7182_93a4_b5c6,
        sender: "alice",
        timestamp_ms: 1_700_000_000_000 + offset,
        payload: b"{\"text\":\"hi\"}",
        headers: pairs(),
        meta: quiver_proto::MessageMeta::ITEM,
    };
    vec![
        enc.hello(1, "eyJhbGciOiJIUzI1NiJ9.e30.sig", "quiver-cli/0.1"),
        enc.welcome(&welcome_info()),
        enc.subscribe(1, "chat:lobby", Some(41)),
        enc.subscribed(1, 7, "chat:lobby", 42),
        enc.unsubscribe(2, 7),
        enc.unsubscribed(2, 7),
        enc.publish(3, "chat:lobby", b"hello", pairs(), Some("k-1")),
        enc.publish_ack(3, 43, u128::MAX - 5, true),
        enc.history_request(
            4,
            "chat:lobby",
            50,
            Some(40),
            Some(10),
            fb::Direction::Forward,
        ),
        enc.history_page(4, [message(11), message(12)], true),
        enc.message(&message(43)),
        enc.stream_header(7, "chat:lobby"),
        enc.error(5, fb::ErrorCode::RateLimited, "slow down", true, false, 250),
        enc.go_away(fb::ErrorCode::GoingAway, "restarting", 1500),
        enc.edit(6, "feed:home", 11, false, b"v2", pairs(), Some("e-1")),
        enc.track("track:city", &position()),
        enc.positions(8, [position_by("bob"), position_by("carol")], true),
        enc.presence(7, "bob", true, 2),
    ]
}

/// A position with every optional field set.
pub(crate) fn position() -> quiver_proto::PositionRef<'static> {
    quiver_proto::PositionRef {
        entity: "courier-7",
        lat: 52.520_008,
        lon: 13.404_954,
        accuracy: Some(4.5),
        heading: Some(271.0),
        speed: Some(8.25),
        timestamp_ms: 1_700_000_000_123,
        user: None,
    }
}

fn position_by(user: &'static str) -> quiver_proto::PositionRef<'static> {
    quiver_proto::PositionRef {
        user: Some(user),
        ..position()
    }
}

/// Feeds `stream` to a reader in chunks of the sizes `chunk_len` picks and
/// returns every frame; panics on a decode error.
pub(crate) fn split(stream: &[u8], mut chunk_len: impl FnMut() -> usize) -> Vec<Bytes> {
    let mut reader = FrameReader::new(quiver_proto::DEFAULT_MAX_FRAME_BYTES);
    let mut frames = Vec::new();
    let mut rest = Bytes::copy_from_slice(stream);
    while !rest.is_empty() {
        let n = chunk_len().clamp(1, rest.len());
        reader.push_bytes(rest.split_to(n));
        while let Some(frame) = reader.next_frame().expect("valid stream") {
            frames.push(frame);
        }
    }
    reader.finish().expect("stream ends on a frame boundary");
    frames
}

pub(crate) fn concat(frames: &[Bytes]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.iter().copied()).collect()
}
