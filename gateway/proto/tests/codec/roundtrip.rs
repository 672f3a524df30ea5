//! Every frame type survives Encoder -> FrameReader -> parse.

use quiver_proto::{
    Body, DecodeError, Encoder, PositionRef, WelcomeInfo, decode, fb, message_id_to_u128,
};

use crate::support::{concat, every_frame_type, split, stored_headers, welcome_info};

/// Checks a decoded Message against what `every_frame_type` encoded.
fn check_message(m: fb::Message<'_>, offset: u64) {
    assert_eq!(m.offset(), offset);
    let id = m.id().map(message_id_to_u128);
    assert_eq!(id, Some(0x0190_8f3a_1b2c_3d4e_5f60_7182_93a4_b5c6));
    assert_eq!(m.sender(), Some("alice"));
    assert_eq!(m.timestamp_ms(), 1_700_000_000_000 + offset);
    assert_eq!(
        m.payload().map(|p| p.bytes()),
        Some(&b"{\"text\":\"hi\"}"[..])
    );
    check_headers(m.headers());
}

fn check_headers(
    headers: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::Header<'_>>>>,
) {
    let got: Vec<(String, String)> = headers
        .expect("headers present")
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect();
    assert_eq!(got, stored_headers());
}

/// Asserts the fields of the `i`th frame of `every_frame_type`.
fn check(i: usize, body: Body<'_>) {
    match (i, body) {
        (0, Body::Hello(f)) => {
            assert_eq!(f.version(), 1);
            assert_eq!(f.token(), Some("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
            assert_eq!(f.client(), Some("quiver-cli/0.1"));
        }
        (1, Body::Welcome(f)) => assert_eq!(WelcomeInfo::from_frame(&f), welcome_info()),
        (2, Body::Subscribe(f)) => {
            assert_eq!(
                (f.request_id(), f.channel(), f.since()),
                (1, Some("chat:lobby"), Some(41))
            );
        }
        (3, Body::Subscribed(f)) => {
            assert_eq!(f.request_id(), 1);
            assert_eq!(f.subscription_id(), 7);
            assert_eq!(f.channel(), Some("chat:lobby"));
            assert_eq!(f.head_offset(), 42);
        }
        (4, Body::Unsubscribe(f)) => assert_eq!((f.request_id(), f.subscription_id()), (2, 7)),
        (5, Body::Unsubscribed(f)) => assert_eq!((f.request_id(), f.subscription_id()), (2, 7)),
        (6, Body::Publish(f)) => {
            assert_eq!(f.request_id(), 3);
            assert_eq!(f.channel(), Some("chat:lobby"));
            assert_eq!(f.payload().map(|p| p.bytes()), Some(&b"hello"[..]));
            check_headers(f.headers());
            assert_eq!(f.key(), Some("k-1"));
        }
        (7, Body::PublishAck(f)) => {
            assert_eq!((f.request_id(), f.offset(), f.duplicate()), (3, 43, true));
            assert_eq!(f.id().map(message_id_to_u128), Some(u128::MAX - 5));
        }
        (8, Body::HistoryRequest(f)) => {
            assert_eq!(
                (f.request_id(), f.channel(), f.limit()),
                (4, Some("chat:lobby"), 50)
            );
            assert_eq!((f.before(), f.after()), (Some(40), Some(10)));
            assert_eq!(f.direction(), fb::Direction::Forward);
        }
        (9, Body::HistoryPage(f)) => {
            assert_eq!((f.request_id(), f.has_more()), (4, true));
            let messages = f.messages().expect("messages present");
            assert_eq!(messages.len(), 2);
            check_message(messages.get(0), 11);
            check_message(messages.get(1), 12);
        }
        (10, Body::Message(f)) => check_message(f, 43),
        (11, Body::StreamHeader(f)) => {
            assert_eq!((f.subscription_id(), f.channel()), (7, Some("chat:lobby")));
        }
        (12, Body::Error(f)) => {
            assert_eq!(
                (f.request_id(), f.code(), f.message()),
                (5, fb::ErrorCode::RateLimited, Some("slow down"))
            );
            assert_eq!(
                (f.retryable(), f.fatal(), f.retry_after_ms()),
                (true, false, 250)
            );
        }
        (13, Body::GoAway(f)) => {
            assert_eq!(
                (f.code(), f.message(), f.reconnect_after_ms()),
                (fb::ErrorCode::GoingAway, Some("restarting"), 1500)
            );
        }
        (14, Body::Edit(f)) => {
            assert_eq!(
                (f.request_id(), f.channel(), f.target(), f.delete()),
                (6, Some("feed:home"), 11, false)
            );
            assert_eq!(f.payload().map(|p| p.bytes()), Some(&b"v2"[..]));
            check_headers(f.headers());
            assert_eq!(f.key(), Some("e-1"));
        }
        (15, Body::Track(f)) => {
            assert_eq!(f.channel(), Some("track:city"));
            let position = f.position().map(PositionRef::from_table);
            assert_eq!(position, Some(crate::support::position()));
        }
        (16, Body::Positions(f)) => {
            assert_eq!((f.subscription_id(), f.snapshot()), (8, true));
            let positions: Vec<_> = f
                .positions()
                .expect("positions present")
                .iter()
                .map(PositionRef::from_table)
                .collect();
            let users: Vec<_> = positions.iter().map(|p| p.user).collect();
            assert_eq!(users, [Some("bob"), Some("carol")]);
            for position in &positions {
                assert_eq!(
                    PositionRef {
                        user: None,
                        ..*position
                    },
                    crate::support::position()
                );
            }
        }
        (17, Body::Presence(f)) => {
            assert_eq!(
                (f.subscription_id(), f.user(), f.joined(), f.connections()),
                (7, Some("bob"), true, 2)
            );
        }
        (i, body) => panic!("frame {i} decoded as {}", body.name()),
    }
}

#[test]
fn every_frame_type_round_trips() {
    let frames = every_frame_type(&mut Encoder::new());
    let stream = concat(&frames);
    // All frames in one chunk: each comes back byte-identical.
    let read = split(&stream, || usize::MAX);
    assert_eq!(read, frames);
    for (i, frame) in read.iter().enumerate() {
        check(i, decode(frame).expect("valid frame"));
    }
}

#[test]
fn defaults_and_absent_optionals() {
    let mut enc = Encoder::new();
    let sub = enc.subscribe(9, "c", None);
    let Ok(Body::Subscribe(s)) = decode(&sub) else {
        panic!("not a Subscribe")
    };
    assert_eq!(s.since(), None, "absent since means live from the head");
    // since = 0 is present (replay from the beginning), not absent.
    let sub = enc.subscribe(9, "c", Some(0));
    let Ok(Body::Subscribe(s)) = decode(&sub) else {
        panic!("not a Subscribe")
    };
    assert_eq!(s.since(), Some(0));

    let publish = enc.publish(1, "c", b"", quiver_proto::NO_HEADERS, None);
    let Ok(Body::Publish(p)) = decode(&publish) else {
        panic!("not a Publish")
    };
    assert!(p.headers().is_none() && p.key().is_none());

    let history = enc.history_request(2, "c", 10, None, None, fb::Direction::Backward);
    let Ok(Body::HistoryRequest(h)) = decode(&history) else {
        panic!("not a HistoryRequest")
    };
    assert_eq!(
        (h.before(), h.after(), h.direction()),
        (None, None, fb::Direction::Backward)
    );

    let empty = enc.history_page(
        3,
        std::iter::empty::<quiver_proto::MessageRef<'_, std::iter::Empty<(&str, &str)>>>(),
        false,
    );
    let Ok(Body::HistoryPage(page)) = decode(&empty) else {
        panic!("not a HistoryPage")
    };
    assert_eq!(page.messages().map(|m| m.len()), Some(0));
}

#[test]
fn encoder_is_reusable_and_deterministic() {
    let mut enc = Encoder::new();
    let first = every_frame_type(&mut enc);
    let second = every_frame_type(&mut enc);
    assert_eq!(first, second);
    assert_eq!(first, every_frame_type(&mut Encoder::with_capacity(4096)));
}

#[test]
fn request_ids_and_names() {
    let frames = every_frame_type(&mut Encoder::new());
    let ids: Vec<Option<u64>> = frames
        .iter()
        .map(|f| decode(f).map(|b| b.request_id()).ok().flatten())
        .collect();
    let expected = [
        None,
        None,
        Some(1),
        Some(1),
        Some(2),
        Some(2),
        Some(3),
        Some(3),
        Some(4),
        Some(4),
        None,
        None,
        Some(5),
        None,
        Some(6),
        None,
        None,
        None,
    ];
    assert_eq!(ids, expected);
    let names: Vec<&str> = frames
        .iter()
        .filter_map(|f| decode(f).ok().map(|b| b.name()))
        .collect();
    assert_eq!(names[0], "Hello");
    assert_eq!(names[13], "GoAway");
    assert_eq!(names[14..], ["Edit", "Track", "Positions", "Presence"]);
}

#[test]
fn decode_error_frame_reports_code_and_message() {
    let error = DecodeError::InvalidUtf8 {
        field: "Publish.channel".to_owned(),
    };
    let frame = Encoder::new().decode_error(&error);
    let Ok(Body::Error(e)) = decode(&frame) else {
        panic!("not an Error")
    };
    assert_eq!(e.code(), fb::ErrorCode::InvalidUtf8);
    assert!(e.fatal() && !e.retryable() && e.request_id() == 0);
    assert!(e.message().is_some_and(|m| m.contains("Publish.channel")));
}

#[test]
fn message_id_halves() {
    let id: u128 = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;
    let wire = fb::MessageId::from(id);
    assert_eq!(
        (wire.hi(), wire.lo()),
        (0x0102_0304_0506_0708, 0x090a_0b0c_0d0e_0f10)
    );
    assert_eq!(u128::from(wire), id);
}

#[test]
fn headers_from_anywhere_without_collecting() {
    let mut enc = Encoder::new();
    let stored = stored_headers();
    let expected = enc.publish(
        1,
        "c",
        b"p",
        stored.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        None,
    );
    // A borrowed Vec of owned pairs, and an array of borrowed pairs.
    assert_eq!(enc.publish(1, "c", b"p", &stored, None), expected);
    let array = [
        ("content-type", "application/json"),
        ("trace-id", "4bf92f3577b34da6"),
    ];
    assert_eq!(enc.publish(1, "c", b"p", array, None), expected);
    // Forwarding the headers of a received frame.
    let Ok(Body::Publish(received)) = decode(&expected) else {
        panic!("not a Publish")
    };
    let forwarded = enc.message(&quiver_proto::MessageRef {
        offset: 1,
        id: 2,
        sender: "s",
        timestamp_ms: 3,
        payload: received.payload().map(|p| p.bytes()).unwrap_or_default(),
        headers: received.headers().into_iter().flatten(),
        meta: quiver_proto::MessageMeta::ITEM,
    });
    let Ok(Body::Message(m)) = decode(&forwarded) else {
        panic!("not a Message")
    };
    check_headers(m.headers());
}

/// Senders pack datagrams with `encoded_len_bound`: it must never be less
/// than what a position really adds to a Positions frame.
#[test]
fn position_length_bound_holds() {
    let mut enc = Encoder::new();
    let empty = enc.positions(u32::MAX, [], true).len();
    for entity_len in [1, 2, 3, 4, 5, 7, 8, 31, 64, 255] {
        for user in [None, Some(""), Some("u"), Some("a-longer-user-id-42")] {
            let entity = "e".repeat(entity_len);
            let mut position = crate::support::position();
            position.entity = &entity;
            position.user = user;
            let one = enc.positions(u32::MAX, [position], true).len();
            let two = enc.positions(u32::MAX, [position, position], true).len();
            let bound = position.encoded_len_bound();
            assert!(
                one - empty <= bound,
                "entity {entity_len}, user {user:?}: {} > {bound}",
                one - empty
            );
            assert!(
                two - one <= bound,
                "entity {entity_len}, user {user:?}: {} > {bound}",
                two - one
            );
        }
    }
}
