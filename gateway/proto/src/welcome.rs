//! The contents of a `Welcome` frame as a plain struct.

use crate::fb;

/// Everything a `Welcome` frame carries: the server fills it in to encode
/// one ([`Encoder::welcome`](crate::Encoder::welcome)) and a client reads
/// one back with [`WelcomeInfo::from_frame`] to learn its limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WelcomeInfo {
    /// The protocol version the server speaks on this connection.
    pub version: u16,
    /// Unique id of the connection, for logs and support requests.
    pub session_id: String,
    /// The tenant the token was issued for; every channel name is resolved
    /// within it.
    pub tenant: String,
    /// The authenticated user id (the token's `sub`).
    pub user: String,
    /// Server wall clock in Unix milliseconds, for clock-skew estimates.
    pub server_time_ms: u64,
    /// Largest accepted length prefix of a frame.
    pub max_frame_bytes: u32,
    /// Largest publish: payload plus header names and values.
    pub max_payload_bytes: u32,
    /// Most subscriptions the connection may hold at once.
    pub max_subscriptions: u32,
    /// Publish token bucket: sustained publishes per second...
    pub publish_rate_per_sec: u32,
    /// ...and the burst allowed above that rate.
    pub publish_burst: u32,
    /// The server closes a connection idle for longer than this.
    pub idle_timeout_ms: u32,
    /// The client should send a QUIC PING at least this often while idle.
    pub keepalive_interval_ms: u32,
}

impl WelcomeInfo {
    /// Copies a received `Welcome` out of its frame. Missing strings read as
    /// empty, missing numbers as 0, as FlatBuffers defaults do.
    pub fn from_frame(welcome: &fb::Welcome<'_>) -> Self {
        Self {
            version: welcome.version(),
            session_id: welcome.session_id().unwrap_or_default().to_owned(),
            tenant: welcome.tenant().unwrap_or_default().to_owned(),
            user: welcome.user().unwrap_or_default().to_owned(),
            server_time_ms: welcome.server_time_ms(),
            max_frame_bytes: welcome.max_frame_bytes(),
            max_payload_bytes: welcome.max_payload_bytes(),
            max_subscriptions: welcome.max_subscriptions(),
            publish_rate_per_sec: welcome.publish_rate_per_sec(),
            publish_burst: welcome.publish_burst(),
            idle_timeout_ms: welcome.idle_timeout_ms(),
            keepalive_interval_ms: welcome.keepalive_interval_ms(),
        }
    }
}
