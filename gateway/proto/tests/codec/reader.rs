//! FrameReader: splitting, limits, truncation, copies.

use bytes::Bytes;
use quiver_proto::{DecodeError, Encoder, FrameReader, fb, parse};

use crate::support::{Rng, concat, every_frame_type, split};

#[test]
fn frames_arriving_byte_by_byte() {
    let frames = every_frame_type(&mut Encoder::new());
    assert_eq!(split(&concat(&frames), || 1), frames);
}

#[test]
fn frames_arriving_in_random_chunks() {
    let frames = every_frame_type(&mut Encoder::new());
    let stream = concat(&frames);
    let mut rng = Rng::new(7);
    for round in 0..200 {
        // Small chunks straddle frames; large ones carry many frames each.
        let max = if round % 2 == 0 { 16 } else { 600 };
        let got = split(&stream, || 1 + rng.below(max));
        assert_eq!(got, frames, "round {round}");
    }
}

#[test]
fn copying_push_and_undrained_pushes() {
    let frames = every_frame_type(&mut Encoder::new());
    let stream = concat(&frames);
    let mut rng = Rng::new(11);
    let mut reader = FrameReader::new(quiver_proto::DEFAULT_MAX_FRAME_BYTES);
    let mut rest = &stream[..];
    let mut got = Vec::new();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at((1 + rng.below(40)).min(rest.len()));
        rest = tail;
        // Mix both push flavours, and drain only every third push.
        if rng.below(2) == 0 {
            reader.push(chunk);
        } else {
            reader.push_bytes(Bytes::copy_from_slice(chunk));
        }
        if rng.below(3) == 0 {
            while let Some(frame) = reader.next_frame().expect("valid stream") {
                got.push(frame);
            }
        }
    }
    while let Some(frame) = reader.next_frame().expect("valid stream") {
        got.push(frame);
    }
    assert_eq!(reader.buffered_len(), 0);
    reader.finish().expect("no bytes left");
    assert_eq!(got, frames);
}

#[test]
fn whole_frame_in_one_chunk_is_not_copied() {
    let frames = every_frame_type(&mut Encoder::new());
    let chunk = Bytes::from(concat(&frames));
    let range = chunk.as_ptr_range();
    let mut reader = FrameReader::new(quiver_proto::DEFAULT_MAX_FRAME_BYTES);
    reader.push_bytes(chunk.clone());
    let mut count = 0;
    while let Some(frame) = reader.next_frame().expect("valid stream") {
        assert!(range.contains(&frame.as_ptr()), "frame {count} was copied");
        count += 1;
    }
    assert_eq!(count, frames.len());
}

#[test]
fn oversized_prefix_fails_before_the_body_arrives() {
    let mut reader = FrameReader::new(100);
    // The prefix arrives in two pieces; the error comes with its last byte.
    reader.push(&101u32.to_le_bytes()[..2]);
    assert_eq!(reader.next_frame(), Ok(None));
    reader.push(&101u32.to_le_bytes()[2..]);
    let err = reader.next_frame().expect_err("too large");
    assert_eq!(err, DecodeError::FrameTooLarge { len: 101, max: 100 });
    assert_eq!(err.code(), fb::ErrorCode::FrameTooLarge);
    // Sticky: the stream cannot be resynchronised.
    assert_eq!(reader.next_frame(), Err(err));

    let mut reader = FrameReader::new(100);
    reader.push_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
    assert!(matches!(
        reader.next_frame(),
        Err(DecodeError::FrameTooLarge {
            len: 0xffff_ffff,
            ..
        })
    ));
}

#[test]
fn prefix_at_the_limit_is_accepted() {
    let frame = Encoder::new().hello(1, "t", "c");
    let max = frame.len() - 4;
    assert_eq!(split_with_max(&frame, max), Ok(vec![frame.clone()]));
    assert!(matches!(
        split_with_max(&frame, max - 1),
        Err(DecodeError::FrameTooLarge { .. })
    ));
}

fn split_with_max(stream: &[u8], max: usize) -> Result<Vec<Bytes>, DecodeError> {
    let mut reader = FrameReader::new(max);
    reader.push(stream);
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        frames.push(frame);
    }
    reader.finish()?;
    Ok(frames)
}

#[test]
fn truncated_stream_fails_at_finish() {
    let frame = Encoder::new().hello(1, "token", "client");
    let mut reader = FrameReader::new(1024);
    assert_eq!(reader.finish(), Ok(()));
    reader.push_bytes(frame.slice(..frame.len() - 1));
    assert_eq!(reader.next_frame(), Ok(None));
    let err = reader.finish().expect_err("truncated");
    assert_eq!(
        err,
        DecodeError::TruncatedFrame {
            buffered: frame.len() - 1,
            expected: Some(frame.len())
        }
    );
    assert_eq!(err.code(), fb::ErrorCode::TruncatedFrame);

    let mut reader = FrameReader::new(1024);
    reader.push(&frame[..2]);
    assert_eq!(reader.next_frame(), Ok(None));
    assert_eq!(
        reader.finish(),
        Err(DecodeError::TruncatedFrame {
            buffered: 2,
            expected: None
        })
    );
}

#[test]
fn zero_length_frame_is_malformed() {
    let mut reader = FrameReader::new(1024);
    reader.push(&[0, 0, 0, 0]);
    let err = reader.next_frame().expect_err("empty frame");
    assert_eq!(err, DecodeError::EmptyFrame);
    assert_eq!(err.code(), fb::ErrorCode::MalformedFrame);
    assert_eq!(
        parse(&[0, 0, 0, 0]).map(|_| ()),
        Err(DecodeError::EmptyFrame)
    );
}

#[test]
fn error_messages_say_what_to_do() {
    let too_large = DecodeError::FrameTooLarge {
        len: 2_000_000,
        max: 1_048_576,
    }
    .to_string();
    assert!(
        too_large.contains("2000000") && too_large.contains("max_frame_bytes"),
        "{too_large}"
    );
    let truncated = DecodeError::TruncatedFrame {
        buffered: 2,
        expected: None,
    }
    .to_string();
    assert!(truncated.contains("2 of at least 4 bytes"), "{truncated}");
}
