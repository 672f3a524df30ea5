//! Reading frames from quinn streams and mapping quinn's errors.

use bytes::Bytes;
use quiver_proto::{DecodeError, FrameReader};

use crate::error::{ClientError, ErrorCode, close_code_retryable};

/// Why a stream stopped yielding frames.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The bytes are not valid frames.
    Decode(DecodeError),
    /// The server reset the stream with this code.
    Reset(quinn::VarInt),
    /// The whole connection is gone.
    Connection(quinn::ConnectionError),
    /// Anything else quinn reported.
    Other(quinn::ReadError),
}

impl ReadFailure {
    pub(crate) fn into_error(self) -> ClientError {
        match self {
            Self::Decode(e) => ClientError::Protocol(e),
            Self::Reset(code) => {
                ClientError::io(format!("stream reset by the server (code {code})"))
            }
            Self::Connection(e) => connection_error(e),
            Self::Other(e) => ClientError::io(e),
        }
    }
}

/// Pushes one received chunk into `reader`.
pub(crate) fn feed(
    reader: &mut FrameReader,
    chunk: Result<Option<quinn::Chunk>, quinn::ReadError>,
) -> Result<bool, ReadFailure> {
    match chunk {
        Ok(Some(chunk)) => {
            reader.push_bytes(chunk.bytes);
            Ok(true)
        }
        Ok(None) => {
            reader.finish().map_err(ReadFailure::Decode)?;
            Ok(false)
        }
        Err(quinn::ReadError::Reset(code)) => Err(ReadFailure::Reset(code)),
        Err(quinn::ReadError::ConnectionLost(e)) => Err(ReadFailure::Connection(e)),
        Err(e) => Err(ReadFailure::Other(e)),
    }
}

/// The next whole frame of `recv`, or `None` when the stream finished on a
/// frame boundary.
pub(crate) async fn next_frame(
    recv: &mut quinn::RecvStream,
    reader: &mut FrameReader,
) -> Result<Option<Bytes>, ReadFailure> {
    loop {
        if let Some(frame) = reader.next_frame().map_err(ReadFailure::Decode)? {
            return Ok(Some(frame));
        }
        // Take whatever quinn has buffered, however large: the frame reader
        // slices frames out of it without copying.
        if !feed(reader, recv.read_chunk(usize::MAX, true).await)? {
            return Ok(None);
        }
    }
}

/// Maps a connection failure; an application close by the server carries a
/// Quiver error code, which decides whether reconnecting makes sense.
pub(crate) fn connection_error(e: quinn::ConnectionError) -> ClientError {
    if let quinn::ConnectionError::ApplicationClosed(close) = &e {
        let code = u16::try_from(close.error_code.into_inner()).unwrap_or(u16::MAX);
        if code != ErrorCode::None.0 {
            return ClientError::Server {
                code: ErrorCode(code),
                message: String::from_utf8_lossy(&close.reason).into_owned(),
                retryable: close_code_retryable(ErrorCode(code)),
                fatal: true,
                retry_after: None,
            };
        }
    }
    ClientError::Connection(e)
}

pub(crate) fn write_error(e: quinn::WriteError) -> ClientError {
    match e {
        quinn::WriteError::ConnectionLost(e) => connection_error(e),
        e => ClientError::io(e),
    }
}
