//! The one error type of the codec layer.

use crate::fb;

/// Why received bytes are not a valid Quiver frame.
///
/// Every variant is fatal for the connection: the peer is expected to send
/// `Error { fatal: true, code: self.code() }` and close the connection with
/// that code. Messages are written for the developer of the sending side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A length prefix announced more bytes than the receiver accepts. Raised
    /// as soon as the prefix is read, before any of the body is buffered.
    #[error(
        "frame of {len} bytes exceeds the limit of {max} bytes (Welcome.max_frame_bytes); \
         send smaller payloads or fewer history messages per frame"
    )]
    FrameTooLarge {
        /// The length the prefix announced.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },

    /// The stream ended in the middle of a frame.
    #[error(
        "stream ended in the middle of a frame ({buffered} of {} bytes received); \
         write every frame completely before finishing the stream",
        expected_len(*.expected)
    )]
    TruncatedFrame {
        /// Bytes of the unfinished frame that did arrive, prefix included.
        buffered: usize,
        /// The whole frame's size with its prefix, when the prefix arrived.
        expected: Option<usize>,
    },

    /// A length prefix of zero: FlatBuffers cannot be empty.
    #[error("zero-length frame; every frame is a non-empty size-prefixed FlatBuffer")]
    EmptyFrame,

    /// The bytes given to `parse` disagree with their own length prefix.
    #[error(
        "frame length prefix says {prefix} bytes but {actual} bytes follow it; \
         pass exactly one whole frame, prefix included"
    )]
    LengthMismatch {
        /// The value of the length prefix.
        prefix: usize,
        /// The bytes that actually follow the prefix.
        actual: usize,
    },

    /// The bytes are not a FlatBuffer whose root is `quiver.proto.Frame`.
    #[error(
        "malformed frame: {detail}; each frame must be a size-prefixed FlatBuffer \
         with root type quiver.proto.Frame built from schema/quiver.fbs"
    )]
    MalformedFrame {
        /// What the FlatBuffers verifier rejected, and where.
        detail: String,
    },

    /// The frame carries no body, or a body type this side does not know
    /// (for example a frame from a newer protocol version).
    #[error(
        "unknown frame body type {tag} (known: 1..={max}); \
         send only frame types of protocol version 1",
        max = fb::Body::ENUM_MAX
    )]
    UnknownFrame {
        /// The `Frame.body_type` union tag; 0 means the body is missing.
        tag: u8,
    },

    /// A string field holds bytes that are not UTF-8.
    #[error("invalid UTF-8 in {field}; every FlatBuffers string must be valid UTF-8")]
    InvalidUtf8 {
        /// Path of the offending field, such as `Publish.channel` or
        /// `HistoryPage.messages[3].headers[0].value`.
        field: String,
    },
}

/// Renders the expected size of a truncated frame for its message.
fn expected_len(expected: Option<usize>) -> String {
    match expected {
        Some(len) => len.to_string(),
        // Not even the 4-byte length prefix arrived.
        None => "at least 4".to_owned(),
    }
}

impl DecodeError {
    /// The wire error code to report this error with (in `Error.code` and as
    /// the QUIC application close code).
    pub fn code(&self) -> fb::ErrorCode {
        match self {
            Self::FrameTooLarge { .. } => fb::ErrorCode::FrameTooLarge,
            Self::TruncatedFrame { .. } => fb::ErrorCode::TruncatedFrame,
            Self::EmptyFrame | Self::LengthMismatch { .. } | Self::MalformedFrame { .. } => {
                fb::ErrorCode::MalformedFrame
            }
            Self::UnknownFrame { .. } => fb::ErrorCode::UnknownFrame,
            Self::InvalidUtf8 { .. } => fb::ErrorCode::InvalidUtf8,
        }
    }
}
