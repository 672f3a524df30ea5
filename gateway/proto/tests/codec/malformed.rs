//! parse: hand-built invalid frames map to the right error.

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use quiver_proto::{DecodeError, Encoder, MessageRef, decode, fb, parse};

/// Finds `needle` in `frame` and overwrites its first byte with 0xff, which
/// is never valid UTF-8.
fn corrupt_string(frame: &[u8], needle: &str) -> Vec<u8> {
    let mut bytes = frame.to_vec();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("string is in the frame");
    bytes[at] = 0xff;
    bytes
}

/// Builds a size-prefixed Frame with an arbitrary union tag and body.
fn frame_with(
    tag: u8,
    body: impl FnOnce(&mut FlatBufferBuilder<'static>) -> Option<WIPOffset<flatbuffers::UnionWIPOffset>>,
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let body = body(&mut fbb);
    let frame = fb::Frame::create(
        &mut fbb,
        &fb::FrameArgs {
            body_type: fb::Body(tag),
            body,
        },
    );
    fbb.finish_size_prefixed(frame, None);
    fbb.finished_data().to_vec()
}

#[test]
fn invalid_utf8_in_publish_channel() {
    let frame = Encoder::new().publish(1, "chat:lobby", b"x", quiver_proto::NO_HEADERS, None);
    let bad = corrupt_string(&frame, "chat:lobby");
    let err = parse(&bad).expect_err("invalid UTF-8");
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            field: "Publish.channel".to_owned()
        }
    );
    assert_eq!(err.code(), fb::ErrorCode::InvalidUtf8);
    assert!(err.to_string().contains("Publish.channel"));
}

#[test]
fn invalid_utf8_deep_in_a_history_page() {
    let msg = |offset, value| MessageRef {
        offset,
        id: 1,
        sender: "bob",
        timestamp_ms: 0,
        payload: b"",
        headers: [("h", value)],
        meta: quiver_proto::MessageMeta::ITEM,
    };
    let frame = Encoder::new().history_page(1, [msg(1, "ok"), msg(2, "broken")], false);
    let err = parse(&corrupt_string(&frame, "broken")).expect_err("invalid UTF-8");
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            field: "HistoryPage.messages[1].headers[0].value".to_owned()
        }
    );
}

#[test]
fn unknown_union_tag_is_unknown_frame() {
    // The verifier accepts unknown tags without looking at the body.
    let frame = frame_with(200, |fbb| {
        let s = fbb.create_string("from the future");
        Some(
            fb::StreamHeader::create(
                fbb,
                &fb::StreamHeaderArgs {
                    subscription_id: 1,
                    channel: Some(s),
                },
            )
            .as_union_value(),
        )
    });
    let err = parse(&frame).expect_err("unknown tag");
    assert_eq!(err, DecodeError::UnknownFrame { tag: 200 });
    assert_eq!(err.code(), fb::ErrorCode::UnknownFrame);
    // The first tag past the known ones.
    let next = fb::Body::ENUM_MAX + 1;
    let frame = frame_with(next, |fbb| {
        Some(fb::Unsubscribe::create(fbb, &fb::UnsubscribeArgs::default()).as_union_value())
    });
    assert_eq!(
        decode(&frame).map(|_| ()),
        Err(DecodeError::UnknownFrame { tag: next })
    );
}

#[test]
fn missing_body_is_unknown_frame() {
    let frame = frame_with(0, |_| None);
    assert_eq!(
        parse(&frame).map(|_| ()),
        Err(DecodeError::UnknownFrame { tag: 0 })
    );
}

#[test]
fn known_tag_without_body_is_malformed() {
    let frame = frame_with(fb::Body::Publish.0, |_| None);
    let err = parse(&frame).expect_err("inconsistent union");
    assert!(matches!(err, DecodeError::MalformedFrame { .. }), "{err:?}");
}

#[test]
fn missing_required_header_name_is_malformed() {
    let frame = frame_with(fb::Body::Publish.0, |fbb| {
        let value = fbb.create_string("v");
        // Header built by hand without its required `name`.
        let start = fbb.start_table();
        fbb.push_slot_always(fb::Header::VT_VALUE, value);
        let header: WIPOffset<fb::Header<'_>> = WIPOffset::new(fbb.end_table(start).value());
        let headers = fbb.create_vector(&[header]);
        let publish = fb::Publish::create(
            fbb,
            &fb::PublishArgs {
                headers: Some(headers),
                ..Default::default()
            },
        );
        Some(publish.as_union_value())
    });
    let err = parse(&frame).expect_err("missing name");
    let DecodeError::MalformedFrame { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.contains("`name`") && detail.contains("Publish.headers[0]"),
        "{detail}"
    );
}

#[test]
fn length_prefix_must_match() {
    let frame = Encoder::new().unsubscribe(1, 2);
    let mut longer = frame.to_vec();
    longer.extend_from_slice(&[0; 4]);
    let actual = longer.len() - 4;
    assert_eq!(
        parse(&longer).map(|_| ()),
        Err(DecodeError::LengthMismatch {
            prefix: frame.len() - 4,
            actual
        })
    );
    assert!(matches!(
        parse(&frame[..3]),
        Err(DecodeError::MalformedFrame { .. })
    ));
    assert!(matches!(
        parse(&[]),
        Err(DecodeError::MalformedFrame { .. })
    ));
}

#[test]
fn missing_nul_terminator_is_malformed() {
    let frame = Encoder::new().stream_header(1, "abc");
    let mut bad = frame.to_vec();
    let at = bad
        .windows(4)
        .position(|w| w == b"abc\0")
        .expect("string present");
    bad[at + 3] = b'!';
    assert!(matches!(
        parse(&bad),
        Err(DecodeError::MalformedFrame { .. })
    ));
}

#[test]
fn shared_tables_cannot_amplify_verification() {
    // One message with a 16 KiB payload, referenced 4096 times: a 32 KiB
    // frame that would make a naive reader walk 64 MiB.
    let frame = frame_with(fb::Body::HistoryPage.0, |fbb| {
        let payload = fbb.create_vector(&[7u8; 16 * 1024]);
        let message = fb::Message::create(
            fbb,
            &fb::MessageArgs {
                offset: 1,
                payload: Some(payload),
                ..Default::default()
            },
        );
        let messages = fbb.create_vector(&[message; 4096]);
        let page = fb::HistoryPage::create(
            fbb,
            &fb::HistoryPageArgs {
                request_id: 1,
                messages: Some(messages),
                has_more: false,
            },
        );
        Some(page.as_union_value())
    });
    assert!(frame.len() < 64 * 1024);
    let err = parse(&frame).expect_err("amplification");
    assert!(matches!(err, DecodeError::MalformedFrame { .. }), "{err:?}");
}

#[test]
fn verifier_limits_accept_dense_honest_frames() {
    // The most tables per byte an honest encoder produces: tiny messages
    // with many empty headers, filling a whole max-size frame.
    let headers = [("", ""); 16];
    let msg = |offset| MessageRef {
        offset,
        id: 0,
        sender: "",
        timestamp_ms: 0,
        payload: b"",
        headers,
        meta: quiver_proto::MessageMeta::ITEM,
    };
    let mut enc = Encoder::new();
    let mut count = 1000;
    let frame = loop {
        let frame = enc.history_page(1, (1..=count).map(msg), true);
        if frame.len() > quiver_proto::DEFAULT_MAX_FRAME_BYTES / 2 {
            break frame;
        }
        count *= 2;
    };
    assert!(frame.len() <= quiver_proto::DEFAULT_MAX_FRAME_BYTES);
    let page = decode(&frame).expect("honest frame passes the verifier");
    assert_eq!(page.request_id(), Some(1));
}
