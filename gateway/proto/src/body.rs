//! A parsed frame as a Rust enum, so receivers can `match` exhaustively
//! instead of probing `body_as_*()` accessors.

use crate::{DecodeError, fb, parse};

/// The body of a verified frame: one variant per frame type of protocol
/// version 1. Each holds the zero-copy table view borrowed from the frame.
///
/// Deliberately exhaustive: a new frame type is a new protocol version, and
/// every receiver must decide what it does with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Body<'a> {
    /// Client -> server: opens the session (first frame of the control stream).
    Hello(fb::Hello<'a>),
    /// Server -> client: the session is open; carries the connection's limits.
    Welcome(fb::Welcome<'a>),
    /// Client -> server: start receiving a channel.
    Subscribe(fb::Subscribe<'a>),
    /// Server -> client: the subscription is set up.
    Subscribed(fb::Subscribed<'a>),
    /// Client -> server: stop a subscription.
    Unsubscribe(fb::Unsubscribe<'a>),
    /// Server -> client: the subscription is stopped.
    Unsubscribed(fb::Unsubscribed<'a>),
    /// Client -> server: append a message to a channel.
    Publish(fb::Publish<'a>),
    /// Server -> client: the published message is durable.
    PublishAck(fb::PublishAck<'a>),
    /// Client -> server: read stored messages.
    HistoryRequest(fb::HistoryRequest<'a>),
    /// Server -> client: one page of stored messages.
    HistoryPage(fb::HistoryPage<'a>),
    /// Server -> client: one delivered message on a subscription stream.
    Message(fb::Message<'a>),
    /// Server -> client: first frame of a subscription stream.
    StreamHeader(fb::StreamHeader<'a>),
    /// Server -> client: a request or the connection was refused.
    Error(fb::Error<'a>),
    /// Server -> client: the server is shutting down.
    GoAway(fb::GoAway<'a>),
    /// Client -> server: update or delete an earlier item.
    Edit(fb::Edit<'a>),
    /// Client -> server: a position on a tracking channel (usually a datagram).
    Track(fb::Track<'a>),
    /// Server -> client: newest positions of a tracking subscription.
    Positions(fb::Positions<'a>),
    /// Server -> client: a user joined or left a channel with presence.
    Presence(fb::Presence<'a>),
}

/// [`parse`]s one whole frame (prefix included) and returns its typed body.
///
/// # Errors
///
/// The same as [`parse`].
pub fn decode(frame: &[u8]) -> Result<Body<'_>, DecodeError> {
    Body::from_frame(parse(frame)?)
}

impl<'a> Body<'a> {
    /// The body of a frame returned by [`parse`].
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnknownFrame`] if the body is missing or of a type this
    /// version does not know (never the case after [`parse`] succeeded).
    pub fn from_frame(frame: fb::Frame<'a>) -> Result<Self, DecodeError> {
        let tag = frame.body_type();
        let body = match tag {
            fb::Body::Hello => frame.body_as_hello().map(Self::Hello),
            fb::Body::Welcome => frame.body_as_welcome().map(Self::Welcome),
            fb::Body::Subscribe => frame.body_as_subscribe().map(Self::Subscribe),
            fb::Body::Subscribed => frame.body_as_subscribed().map(Self::Subscribed),
            fb::Body::Unsubscribe => frame.body_as_unsubscribe().map(Self::Unsubscribe),
            fb::Body::Unsubscribed => frame.body_as_unsubscribed().map(Self::Unsubscribed),
            fb::Body::Publish => frame.body_as_publish().map(Self::Publish),
            fb::Body::PublishAck => frame.body_as_publish_ack().map(Self::PublishAck),
            fb::Body::HistoryRequest => frame.body_as_history_request().map(Self::HistoryRequest),
            fb::Body::HistoryPage => frame.body_as_history_page().map(Self::HistoryPage),
            fb::Body::Message => frame.body_as_message().map(Self::Message),
            fb::Body::StreamHeader => frame.body_as_stream_header().map(Self::StreamHeader),
            fb::Body::Error => frame.body_as_error().map(Self::Error),
            fb::Body::GoAway => frame.body_as_go_away().map(Self::GoAway),
            fb::Body::Edit => frame.body_as_edit().map(Self::Edit),
            fb::Body::Track => frame.body_as_track().map(Self::Track),
            fb::Body::Positions => frame.body_as_positions().map(Self::Positions),
            fb::Body::Presence => frame.body_as_presence().map(Self::Presence),
            _ => None,
        };
        body.ok_or(DecodeError::UnknownFrame { tag: tag.0 })
    }

    /// The frame type's name as in the schema, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "Hello",
            Self::Welcome(_) => "Welcome",
            Self::Subscribe(_) => "Subscribe",
            Self::Subscribed(_) => "Subscribed",
            Self::Unsubscribe(_) => "Unsubscribe",
            Self::Unsubscribed(_) => "Unsubscribed",
            Self::Publish(_) => "Publish",
            Self::PublishAck(_) => "PublishAck",
            Self::HistoryRequest(_) => "HistoryRequest",
            Self::HistoryPage(_) => "HistoryPage",
            Self::Message(_) => "Message",
            Self::StreamHeader(_) => "StreamHeader",
            Self::Error(_) => "Error",
            Self::GoAway(_) => "GoAway",
            Self::Edit(_) => "Edit",
            Self::Track(_) => "Track",
            Self::Positions(_) => "Positions",
            Self::Presence(_) => "Presence",
        }
    }

    /// The `request_id` of a request or response frame; `None` for frames
    /// that have none (Hello, Welcome, Message, StreamHeader, GoAway, Track, Positions,
    /// Presence). A
    /// refusal of a frame should echo this id (0 when `None`).
    pub fn request_id(&self) -> Option<u64> {
        match self {
            Self::Subscribe(f) => Some(f.request_id()),
            Self::Subscribed(f) => Some(f.request_id()),
            Self::Unsubscribe(f) => Some(f.request_id()),
            Self::Unsubscribed(f) => Some(f.request_id()),
            Self::Publish(f) => Some(f.request_id()),
            Self::PublishAck(f) => Some(f.request_id()),
            Self::HistoryRequest(f) => Some(f.request_id()),
            Self::HistoryPage(f) => Some(f.request_id()),
            Self::Error(f) => Some(f.request_id()),
            Self::Edit(f) => Some(f.request_id()),
            Self::Hello(_)
            | Self::Welcome(_)
            | Self::Message(_)
            | Self::StreamHeader(_)
            | Self::GoAway(_)
            | Self::Track(_)
            | Self::Positions(_)
            | Self::Presence(_) => None,
        }
    }
}
