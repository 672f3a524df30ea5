//! Splitting a byte stream into length-prefixed frames, without I/O.

use bytes::{Buf, Bytes, BytesMut};

use crate::{DecodeError, LENGTH_PREFIX_BYTES as PREFIX_LEN};

/// Cuts the bytes of one stream into whole frames.
///
/// Feed it every chunk read from the stream with [`push_bytes`] (or
/// [`push`]), then call [`next_frame`] until it returns `Ok(None)`; at the
/// end of the stream call [`finish`]. Each frame is returned *with* its
/// 4-byte length prefix, i.e. as a complete FlatBuffers size-prefixed buffer,
/// which is exactly what [`parse`](crate::parse) takes.
///
/// Copies are kept to the minimum: a frame that lies inside one pushed chunk
/// is returned as a zero-copy slice of it; only a frame that straddles
/// chunks is copied, once, into a buffer of its own. The unfinished tail of a
/// chunk is copied out rather than kept, so a peer trickling tiny chunks
/// cannot make the reader pin many large receive buffers.
///
/// Errors are sticky: once [`next_frame`] fails it fails the same way on every
/// later call, because the stream cannot be resynchronised.
///
/// [`push_bytes`]: FrameReader::push_bytes
/// [`push`]: FrameReader::push
/// [`next_frame`]: FrameReader::next_frame
/// [`finish`]: FrameReader::finish
#[derive(Debug)]
pub struct FrameReader {
    /// Largest accepted value of a length prefix.
    max_frame_bytes: usize,
    /// The start of the stream's unread bytes, copied out of earlier chunks:
    /// always the beginning of a frame. Read before `chunk`.
    partial: BytesMut,
    /// The rest of the unread bytes: the unread part of the latest chunk,
    /// kept shared so whole frames inside it need no copy.
    chunk: Bytes,
}

impl FrameReader {
    /// A reader that rejects frames whose length prefix exceeds
    /// `max_frame_bytes` (see [`crate::DEFAULT_MAX_FRAME_BYTES`]).
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            partial: BytesMut::new(),
            chunk: Bytes::new(),
        }
    }

    /// Appends a chunk received from the stream, without copying it.
    pub fn push_bytes(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if !self.chunk.is_empty() {
            // The caller did not drain the previous chunk; keep only one
            // shared chunk by moving the old one behind `partial`.
            self.partial.extend_from_slice(&self.chunk);
        }
        self.chunk = data;
    }

    /// Appends bytes received from the stream, copying them once.
    pub fn push(&mut self, data: &[u8]) {
        if !self.chunk.is_empty() {
            self.partial.extend_from_slice(&self.chunk);
            self.chunk = Bytes::new();
        }
        self.partial.extend_from_slice(data);
    }

    /// Bytes pushed but not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.partial.len() + self.chunk.len()
    }

    /// Returns the next complete frame, prefix included, or `Ok(None)` when
    /// more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`DecodeError::FrameTooLarge`] as soon as a length prefix exceeds the
    /// limit (the body is never buffered), [`DecodeError::EmptyFrame`] for a
    /// zero length prefix.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if self.partial.is_empty() {
            return self.frame_from_chunk();
        }
        // `partial` holds the start of the next frame: complete its prefix
        // and then its body from `chunk`, copying no more than that frame.
        self.fill_partial(PREFIX_LEN);
        let Some(total) = self.frame_len(&self.partial)? else {
            return Ok(None);
        };
        self.fill_partial(total);
        if self.partial.len() < total {
            return Ok(None);
        }
        Ok(Some(self.partial.split_to(total).freeze()))
    }

    /// Checks that the stream ended on a frame boundary. Call it once the
    /// stream is finished and [`next_frame`](Self::next_frame) returned
    /// `Ok(None)`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TruncatedFrame`] if bytes of an unfinished frame remain.
    pub fn finish(&self) -> Result<(), DecodeError> {
        let buffered = self.buffered_len();
        if buffered == 0 {
            return Ok(());
        }
        let mut prefix = [0u8; PREFIX_LEN];
        let expected = if self.copy_prefix(&mut prefix) {
            Some(PREFIX_LEN.saturating_add(u32::from_le_bytes(prefix) as usize))
        } else {
            None
        };
        Err(DecodeError::TruncatedFrame { buffered, expected })
    }

    /// The fast path: the next frame starts at the front of `chunk`.
    fn frame_from_chunk(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self.frame_len(&self.chunk)? {
            Some(total) if self.chunk.len() >= total => {
                let frame = self.chunk.split_to(total);
                if self.chunk.is_empty() {
                    // Drop our reference so the receive buffer is freed as
                    // soon as the caller drops the frame.
                    self.chunk = Bytes::new();
                }
                Ok(Some(frame))
            }
            _ => {
                // The frame continues in a later chunk: copy what arrived.
                // `partial` grows with the bytes that actually arrive, never
                // to the announced length up front, so a bare prefix cannot
                // make us allocate max_frame_bytes.
                self.take_chunk_into_partial(self.chunk.len());
                Ok(None)
            }
        }
    }

    /// Moves bytes from the front of `chunk` to `partial` until `partial`
    /// holds `target` bytes or `chunk` is empty.
    fn fill_partial(&mut self, target: usize) {
        let wanted = target.saturating_sub(self.partial.len());
        self.take_chunk_into_partial(wanted.min(self.chunk.len()));
    }

    fn take_chunk_into_partial(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.partial.extend_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        if self.chunk.is_empty() {
            // Release our reference to the receive buffer early.
            self.chunk = Bytes::new();
        }
    }

    /// The total size (prefix included) of the frame starting at
    /// `buf[0]`, or `None` if the prefix is not complete yet.
    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*prefix);
        if len == 0 {
            return Err(DecodeError::EmptyFrame);
        }
        // u32 -> usize is lossless on every target we build for (>= 32-bit),
        // but compare in u64 so the check holds on any target.
        if u64::from(len) > self.max_frame_bytes as u64 {
            return Err(DecodeError::FrameTooLarge {
                len: u64::from(len),
                max: self.max_frame_bytes,
            });
        }
        Ok(Some(PREFIX_LEN.saturating_add(len as usize)))
    }

    /// Copies the first 4 unread bytes, wherever they are; false if fewer
    /// than 4 bytes are buffered.
    fn copy_prefix(&self, out: &mut [u8; PREFIX_LEN]) -> bool {
        let mut bytes = self.partial.iter().chain(self.chunk.iter());
        for slot in out.iter_mut() {
            match bytes.next() {
                Some(byte) => *slot = *byte,
                None => return false,
            }
        }
        true
    }
}
