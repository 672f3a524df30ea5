//! The floor's wire format: a 4-byte little-endian length, then a 1-byte
//! kind and the body. No FlatBuffers, no ids, no headers: the least a
//! length-prefixed message stream over QUIC can carry.
//!
//! | kind | direction | body |
//! |---|---|---|
//! | `HELLO` | client → server | empty; opens a connection's control stream |
//! | `WELCOME` | server → client | empty |
//! | `SUB` | client → server | empty; this stream becomes a subscription |
//! | `SUBSCRIBED` | server → client | head offset, u64 LE |
//! | `PUB` | client → server | the payload |
//! | `ACK` | server → client | the message's offset, u64 LE (in publish order) |
//! | `MSG` | server → client | offset u64 LE, then the payload |

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

pub const HELLO: u8 = 1;
pub const WELCOME: u8 = 2;
pub const SUB: u8 = 3;
pub const SUBSCRIBED: u8 = 4;
pub const PUB: u8 = 5;
pub const ACK: u8 = 6;
pub const MSG: u8 = 7;

/// Largest frame accepted (kind + body), as the gateway's default
/// `max_frame_bytes`.
pub const MAX_FRAME: usize = 1024 * 1024;

/// Bytes before the body: length and kind.
pub const HEADER: usize = 5;

/// Encodes one frame.
pub fn encode(kind: u8, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER + body.len());
    put(&mut buf, kind, &[body]);
    buf.freeze()
}

/// Appends one frame whose body is the concatenation of `parts`.
pub fn put(buf: &mut BytesMut, kind: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
    buf.put_u32_le(u32::try_from(len).unwrap_or(u32::MAX));
    buf.put_u8(kind);
    for part in parts {
        buf.put_slice(part);
    }
}

/// A frame whose body is one u64 (`SUBSCRIBED`, `ACK`).
pub fn encode_u64(kind: u8, value: u64) -> Bytes {
    encode(kind, &value.to_le_bytes())
}

/// A `MSG` frame.
pub fn message(offset: u64, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER + 8 + payload.len());
    put(&mut buf, MSG, &[&offset.to_le_bytes(), payload]);
    buf.freeze()
}

/// Why a byte stream is not floor frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix is 0 (no kind) or above [`MAX_FRAME`].
    BadLength(usize),
    /// A body too short for its kind.
    Short(u8),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadLength(n) => write!(f, "frame length {n} outside 1..={MAX_FRAME}"),
            FrameError::Short(kind) => write!(f, "frame of kind {kind} is too short"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reassembles frames from stream chunks.
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
}

impl Reader {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame as (kind, body), if buffered.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Bytes)>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(FrameError::BadLength(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        let mut frame = self.buf.split_to(len).freeze();
        let kind = frame.get_u8();
        Ok(Some((kind, frame)))
    }
}

/// The u64 at the start of a body.
pub fn read_u64(kind: u8, body: &[u8]) -> Result<u64, FrameError> {
    let bytes = body.get(..8).ok_or(FrameError::Short(kind))?;
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_chunk_boundaries() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode(HELLO, b""));
        wire.extend_from_slice(&message(42, b"payload"));
        wire.extend_from_slice(&encode_u64(ACK, 7));
        let mut reader = Reader::default();
        let mut frames = Vec::new();
        // One byte at a time: every split point must work.
        for byte in wire.iter() {
            reader.feed(&[*byte]);
            while let Some(frame) = reader.next_frame().expect("valid") {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], (HELLO, Bytes::new()));
        assert_eq!(frames[1].0, MSG);
        assert_eq!(read_u64(MSG, &frames[1].1), Ok(42));
        assert_eq!(&frames[1].1[8..], b"payload");
        assert_eq!(read_u64(ACK, &frames[2].1), Ok(7));
    }

    #[test]
    fn a_100_byte_message_costs_113_bytes() {
        assert_eq!(message(1, &[0; 100]).len(), HEADER + 8 + 100);
    }

    #[test]
    fn bad_lengths_and_short_bodies_are_errors() {
        let mut reader = Reader::default();
        reader.feed(&0u32.to_le_bytes());
        assert_eq!(reader.next_frame(), Err(FrameError::BadLength(0)));
        let mut reader = Reader::default();
        reader.feed(&(MAX_FRAME as u32 + 1).to_le_bytes());
        assert!(matches!(reader.next_frame(), Err(FrameError::BadLength(_))));
        assert_eq!(read_u64(ACK, b"123"), Err(FrameError::Short(ACK)));
    }
}
