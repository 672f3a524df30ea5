//! Building frames. One file per group of frame types; this one holds the
//! shared builder plumbing.

mod control;
mod header;
mod messages;
mod requests;
mod tracking;

use bytes::Bytes;
use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, UnionWIPOffset, Vector, WIPOffset};

use crate::fb;

pub use header::{HeaderPair, NO_HEADERS};
pub use messages::{MessageMeta, MessageRef};
pub use tracking::PositionRef;

/// A vector of `Header` tables under construction.
type HeadersOffset = WIPOffset<Vector<'static, ForwardsUOffset<fb::Header<'static>>>>;

/// Frames up to this size leave their buffer in place for the next frame;
/// larger ones release it.
const RETAIN_BYTES: usize = 16 * 1024;

/// Builds frames, one method per frame type.
///
/// Each method returns the complete frame, length prefix included, ready to
/// be written to a stream as is. The encoder keeps its FlatBuffers builder and
/// scratch vectors between frames, so after warm-up it allocates only the
/// returned `Bytes`. Its memory stays at the high-water mark of the frames
/// built, up to 16 KiB; a larger frame's buffer is released after it.
///
/// Inputs are not checked against protocol limits (channel rules,
/// `max_payload_bytes`, `max_frame_bytes`): that is the session's job, which
/// knows the negotiated limits. FlatBuffers cannot exceed 2 GiB, and building
/// a frame that large panics; callers enforce far smaller limits first.
/// Optional strings passed as `None` and empty header lists are left out of
/// the frame, which readers see as absent (`None`).
pub struct Encoder {
    /// Reused between frames; reset after each one.
    fbb: FlatBufferBuilder<'static>,
    /// Offsets of the `Header` tables of the message being built, needed
    /// because a FlatBuffers vector is written after all its elements.
    header_scratch: Vec<WIPOffset<fb::Header<'static>>>,
    /// Offsets of the `Message` tables of the history page being built.
    message_scratch: Vec<WIPOffset<fb::Message<'static>>>,
    /// Offsets of the `Position` tables of the Positions frame being built.
    position_scratch: Vec<WIPOffset<fb::Position<'static>>>,
}

impl Encoder {
    /// An encoder whose buffers grow on first use.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An encoder with room for a frame of `bytes` bytes before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            fbb: FlatBufferBuilder::with_capacity(bytes),
            header_scratch: Vec::new(),
            message_scratch: Vec::new(),
            position_scratch: Vec::new(),
        }
    }

    /// Wraps `body` in a size-prefixed `Frame`, copies the result out and
    /// resets the builder for the next frame.
    ///
    /// The copy buys reuse: the builder writes back to front into its own
    /// buffer, so handing that buffer out would mean allocating a fresh one
    /// (zeroed, of the high-water size) for every frame instead.
    fn finish(&mut self, body_type: fb::Body, body: WIPOffset<UnionWIPOffset>) -> Bytes {
        let frame = fb::Frame::create(
            &mut self.fbb,
            &fb::FrameArgs {
                body_type,
                body: Some(body),
            },
        );
        fb::finish_size_prefixed_frame_buffer(&mut self.fbb, frame);
        let bytes = Bytes::copy_from_slice(self.fbb.finished_data());
        if bytes.len() > RETAIN_BYTES {
            // One large frame (a full history page) must not pin its buffer
            // for the life of an otherwise idle connection.
            self.fbb = FlatBufferBuilder::new();
            self.message_scratch = Vec::new();
            self.position_scratch = Vec::new();
        } else {
            self.fbb.reset();
        }
        bytes
    }

    /// Writes the `Header` tables and their vector; `None` when there are
    /// no headers, so the field is left out.
    fn create_headers<H>(&mut self, headers: H) -> Option<HeadersOffset>
    where
        H: IntoIterator,
        H::Item: HeaderPair,
    {
        self.header_scratch.clear();
        for header in headers {
            let name = self.fbb.create_string(header.name());
            let value = self.fbb.create_string(header.value());
            let header = fb::Header::create(
                &mut self.fbb,
                &fb::HeaderArgs {
                    name: Some(name),
                    value: Some(value),
                },
            );
            self.header_scratch.push(header);
        }
        if self.header_scratch.is_empty() {
            return None;
        }
        Some(self.fbb.create_vector(&self.header_scratch))
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Encoder {
    // The builder's buffer is scratch space; its bytes are noise in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}
