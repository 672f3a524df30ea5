//! Quiver wire protocol, version 1: the FlatBuffers schema, its generated
//! code and a sans-IO frame codec.
//!
//! `docs/PROTOCOL.md` is the specification; `schema/quiver.fbs` is the single
//! source of the encoding. This crate does no I/O: transports feed received
//! bytes to a [`FrameReader`], hand each frame to [`parse`] (or [`decode`]),
//! and write the [`bytes::Bytes`] that [`Encoder`] returns.
//!
//! ```
//! use quiver_proto::{Body, Encoder, FrameReader, decode, DEFAULT_MAX_FRAME_BYTES};
//!
//! let mut encoder = Encoder::new();
//! let frame = encoder.hello(quiver_proto::PROTOCOL_VERSION, "jwt", "demo/0.1");
//!
//! let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
//! reader.push_bytes(frame);
//! while let Some(frame) = reader.next_frame()? {
//!     match decode(&frame)? {
//!         Body::Hello(hello) => assert_eq!(hello.client(), Some("demo/0.1")),
//!         other => panic!("unexpected {}", other.name()),
//!     }
//! }
//! reader.finish()?;
//! # Ok::<(), quiver_proto::DecodeError>(())
//! ```

mod body;
mod encode;
mod error;
mod generated;
mod id;
mod parse;
mod reader;
mod welcome;

/// The generated FlatBuffers types: `fb::Frame`, `fb::ErrorCode`,
/// `fb::Publish`, ... Tables are zero-copy views into a verified frame.
pub use generated::quiver::proto as fb;

pub use body::{Body, decode};
pub use encode::{Encoder, HeaderPair, MessageMeta, MessageRef, NO_HEADERS, PositionRef};
pub use error::DecodeError;
pub use id::{message_id_from_u128, message_id_to_u128};
pub use parse::parse;
pub use reader::FrameReader;
pub use welcome::WelcomeInfo;

/// The protocol version this crate speaks, sent in `Hello.version` and
/// echoed in `Welcome.version`.
pub const PROTOCOL_VERSION: u16 = 1;

/// The TLS ALPN protocol id of version 1; a connection that did not
/// negotiate it is not speaking Quiver.
pub const ALPN: &[u8] = b"quiver/1";

/// Size of the little-endian `u32` length prefix in front of every frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Default UDP port of the QUIC listener.
pub const DEFAULT_PORT: u16 = 4433;

/// Default largest accepted frame: the largest value of the length prefix
/// (the prefix itself is not counted). Advertised in `Welcome.max_frame_bytes`.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Default largest publish: payload plus header names and values, in bytes.
/// Advertised in `Welcome.max_payload_bytes`.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Default time a client has to send `Hello` after opening the connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10_000;

/// Default server idle timeout, advertised in `Welcome.idle_timeout_ms`.
pub const DEFAULT_IDLE_TIMEOUT_MS: u32 = 60_000;

/// Default keep-alive interval, advertised in `Welcome.keepalive_interval_ms`.
/// Below 30 s because many NAT gateways forget idle UDP bindings after 30 s.
pub const DEFAULT_KEEPALIVE_INTERVAL_MS: u32 = 25_000;

/// Default cap on `HistoryRequest.limit`; larger limits are silently capped.
pub const DEFAULT_MAX_HISTORY_PAGE: u32 = 1000;

/// The optional fields of a `Subscribe` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Replay every message after this offset before going live.
    pub since: Option<u64>,
    /// Replay the latest `last` messages before going live (feeds); ignored
    /// when `since` is set.
    pub last: u32,
    /// Tracking channels: at most this many positions per entity per
    /// second; 0 for the server's maximum.
    pub max_rate: u32,
}

/// Largest datagram payload Quiver sends or expects: safely under the
/// smallest QUIC datagram frame a 1200-byte minimum MTU path can carry.
/// Senders still check the connection's current limit.
pub const MAX_DATAGRAM_BYTES: usize = 1150;
