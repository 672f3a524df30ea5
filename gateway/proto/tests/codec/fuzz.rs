//! Deterministic fuzzing: no input may panic, and every failure maps to a
//! decode error code.

use quiver_proto::{Body, DecodeError, Encoder, FrameReader, MessageRef, fb, parse};

use crate::support::{Rng, every_frame_type, stored_headers};

/// Iterations per fuzz loop: `default`, or `QUIVER_FUZZ_ITERS` for a longer
/// run (`QUIVER_FUZZ_ITERS=2000000 cargo test --release -p quiver-proto fuzz`).
fn iterations(default: usize) -> usize {
    std::env::var("QUIVER_FUZZ_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Parses `frame`; on success reads every field (the generated `Debug`
/// walks the whole tree), on failure checks the error's code.
fn exercise(frame: &[u8]) -> Result<(), DecodeError> {
    match parse(frame) {
        Ok(root) => {
            let text = format!("{root:?}");
            assert!(!text.is_empty());
            let body = Body::from_frame(root).expect("parse only accepts known bodies");
            let _ = (body.name(), body.request_id(), format!("{body:?}"));
            Ok(())
        }
        Err(err) => {
            let code = err.code();
            assert!(
                [
                    fb::ErrorCode::MalformedFrame,
                    fb::ErrorCode::UnknownFrame,
                    fb::ErrorCode::InvalidUtf8
                ]
                .contains(&code),
                "unexpected {code:?} for {err}"
            );
            assert!(!err.to_string().is_empty());
            Err(err)
        }
    }
}

/// Valid frames to mutate, including a page of several messages.
fn corpus() -> Vec<Vec<u8>> {
    let mut enc = Encoder::new();
    let headers = stored_headers();
    let page = enc.history_page(
        9,
        (1..=5).map(|offset| MessageRef {
            offset,
            id: u128::from(offset) << 80,
            sender: "carol",
            timestamp_ms: offset * 1000,
            payload: &[0xab; 24],
            headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            meta: quiver_proto::MessageMeta::ITEM,
        }),
        true,
    );
    let mut frames: Vec<Vec<u8>> = every_frame_type(&mut enc)
        .iter()
        .map(|f| f.to_vec())
        .collect();
    frames.push(page.to_vec());
    frames
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..iterations(20_000) {
        let len = rng.below(300);
        let mut frame = vec![0u8; 4 + len];
        rng.fill(&mut frame);
        // Mostly a consistent prefix, so the bytes reach the verifier.
        if rng.below(8) != 0 {
            frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        let _ = exercise(&frame);
    }
}

#[test]
fn mutated_valid_frames_never_panic() {
    let corpus = corpus();
    let mut rng = Rng::new(42);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..iterations(20_000) {
        let mut frame = corpus[rng.below(corpus.len())].clone();
        for _ in 0..1 + rng.below(4) {
            // Leave the prefix alone: its checks are trivial and would
            // otherwise hide the verifier's.
            let at = 4 + rng.below(frame.len() - 4);
            match rng.below(3) {
                0 => frame[at] ^= 1 << rng.below(8),
                1 => frame[at] = rng.next_u64() as u8,
                _ => frame[at] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)],
            }
        }
        match exercise(&frame) {
            Ok(()) => accepted += 1,
            Err(_) => rejected += 1,
        }
    }
    // Both outcomes must be common, or the mutations test nothing.
    assert!(
        accepted > 1000 && rejected > 1000,
        "accepted {accepted}, rejected {rejected}"
    );
}

#[test]
fn random_streams_never_panic_the_reader() {
    let mut rng = Rng::new(99);
    for _ in 0..iterations(2_000) {
        let mut reader = FrameReader::new(256);
        let mut stream = vec![0u8; rng.below(2048)];
        rng.fill(&mut stream);
        let mut rest = &stream[..];
        'stream: while !rest.is_empty() {
            let (chunk, tail) = rest.split_at((1 + rng.below(64)).min(rest.len()));
            rest = tail;
            reader.push(chunk);
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => {
                        assert!(frame.len() > 4 && frame.len() <= 4 + 256);
                        let _ = exercise(&frame);
                    }
                    Ok(None) => break,
                    Err(err) => {
                        assert!(matches!(
                            err,
                            DecodeError::FrameTooLarge { .. } | DecodeError::EmptyFrame
                        ));
                        break 'stream;
                    }
                }
            }
        }
        let _ = reader.finish();
    }
}
