//! Verifying one frame and mapping verifier failures to wire error codes.

use std::fmt::Write as _;

use flatbuffers::{ErrorTraceDetail, InvalidFlatbuffer, VerifierOptions};

use crate::{DecodeError, LENGTH_PREFIX_BYTES as PREFIX_LEN, fb};

/// Deepest table nesting the schema allows is 4 (Frame > HistoryPage >
/// Message > Header, or Frame > Positions > Position); the slack only
/// matters to future schema versions.
const MAX_DEPTH: usize = 8;

/// Verifies one whole frame, length prefix included (as returned by
/// [`FrameReader::next_frame`](crate::FrameReader::next_frame) and by every
/// [`Encoder`](crate::Encoder) method), and returns its root table.
///
/// On success every field reachable through the returned table is in bounds
/// and every string is valid UTF-8, and `body_type()` is one of the frame
/// types of protocol version 1, so exactly one `body_as_*()` accessor returns
/// `Some`. Enum fields (`Direction`, `ErrorCode`) may still hold values this
/// version does not name; the session layer decides what to do with those.
///
/// # Errors
///
/// - [`DecodeError::InvalidUtf8`] naming the field, for a non-UTF-8 string;
/// - [`DecodeError::UnknownFrame`] when the body is missing or of an unknown
///   type (the verifier itself accepts unknown union tags without looking at
///   the body, so this is checked here);
/// - [`DecodeError::EmptyFrame`], [`DecodeError::LengthMismatch`] or
///   [`DecodeError::MalformedFrame`] for anything else.
pub fn parse(frame: &[u8]) -> Result<fb::Frame<'_>, DecodeError> {
    let Some(prefix) = frame.first_chunk::<PREFIX_LEN>() else {
        return Err(DecodeError::MalformedFrame {
            detail: format!(
                "{} bytes is shorter than the 4-byte length prefix",
                frame.len()
            ),
        });
    };
    let prefix = u32::from_le_bytes(*prefix) as usize;
    let actual = frame.len() - PREFIX_LEN;
    if prefix == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if prefix != actual {
        return Err(DecodeError::LengthMismatch { prefix, actual });
    }
    let root = fb::size_prefixed_root_as_frame_with_opts(&verifier_options(frame.len()), frame)
        .map_err(map_verifier_error)?;
    let tag = root.body_type();
    if tag == fb::Body::NONE || tag.0 > fb::Body::ENUM_MAX {
        return Err(DecodeError::UnknownFrame { tag: tag.0 });
    }
    Ok(root)
}

/// Verifier limits proportional to the frame, so verification work stays
/// linear in the bytes received however the offsets are arranged.
fn verifier_options(frame_len: usize) -> VerifierOptions {
    VerifierOptions {
        max_depth: MAX_DEPTH,
        // Every table costs at least a 4-byte offset pointing at it plus
        // its own 4-byte vtable offset; only a buffer whose offsets share
        // tables (a DAG, which no honest encoder builds) can reach more.
        max_tables: frame_len / 4 + 1,
        // The verifier counts shared vtables once per table that uses them,
        // so honest frames exceed their length somewhat; 8x leaves ample room
        // while a DAG that revisits the same bytes is cut off early.
        max_apparent_size: frame_len.saturating_mul(8),
        // FlatBuffers strings are NUL-terminated on the wire; every
        // conforming builder writes the terminator.
        ignore_missing_null_terminator: false,
    }
}

/// Maps a verifier failure to the error the peer is told about.
fn map_verifier_error(error: InvalidFlatbuffer) -> DecodeError {
    match error {
        InvalidFlatbuffer::Utf8Error { error_trace, .. } => DecodeError::InvalidUtf8 {
            field: field_path(error_trace.as_ref()),
        },
        InvalidFlatbuffer::MissingRequiredField {
            required,
            error_trace,
        } => DecodeError::MalformedFrame {
            detail: format!(
                "required field `{required}` missing in {}",
                field_path(error_trace.as_ref())
            ),
        },
        InvalidFlatbuffer::InconsistentUnion { error_trace, .. } => DecodeError::MalformedFrame {
            detail: format!(
                "union type and value disagree in {} (exactly one of body_type and body is set)",
                field_path(error_trace.as_ref())
            ),
        },
        InvalidFlatbuffer::MissingNullTerminator { error_trace, .. } => {
            DecodeError::MalformedFrame {
                detail: format!(
                    "string {} lacks its NUL terminator",
                    field_path(error_trace.as_ref())
                ),
            }
        }
        InvalidFlatbuffer::Unaligned { error_trace, .. }
        | InvalidFlatbuffer::RangeOutOfBounds { error_trace, .. }
        | InvalidFlatbuffer::SignedOffsetOutOfBounds { error_trace, .. } => {
            DecodeError::MalformedFrame {
                detail: format!(
                    "bad offset or alignment at {}",
                    field_path(error_trace.as_ref())
                ),
            }
        }
        InvalidFlatbuffer::TooManyTables
        | InvalidFlatbuffer::ApparentSizeTooLarge
        | InvalidFlatbuffer::DepthLimitReached => DecodeError::MalformedFrame {
            detail: "offsets revisit the same data (too many tables for the frame size)".into(),
        },
    }
}

/// Renders the verifier's trace (innermost step first) as a path from the
/// frame down, such as `HistoryPage.messages[3].headers[0].value`.
fn field_path(trace: &[ErrorTraceDetail]) -> String {
    let mut path = String::new();
    for step in trace.iter().rev() {
        match step {
            // The union's value field; the variant step that follows names
            // the table, which reads better.
            ErrorTraceDetail::TableField { field_name, .. }
                if path.is_empty() && field_name == "body" => {}
            ErrorTraceDetail::TableField { field_name, .. } => {
                path.push('.');
                path.push_str(field_name.as_ref());
            }
            ErrorTraceDetail::VectorElement { index, .. } => {
                // Writing to a String cannot fail.
                let _ = write!(path, "[{index}]");
            }
            ErrorTraceDetail::UnionVariant { variant, .. } => {
                // "Body::Publish" -> "Publish"
                let variant: &str = variant.as_ref();
                let name = variant.rsplit("::").next().unwrap_or(variant);
                path.push_str(name);
            }
        }
    }
    let path = path.trim_start_matches('.');
    if path.is_empty() {
        "Frame".to_owned()
    } else {
        path.to_owned()
    }
}
