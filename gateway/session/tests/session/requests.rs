//! Requests on an open session: publishes becoming appends, store
//! failures, request-level refusals, token patterns, rate limits, GoAway.

use std::time::Duration;

use quiver_proto::Body;
use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, Claims, LaneId, Limits};
use quiver_storage::{Appended, MessageId, StoreError};

use crate::harness::{Harness, NO_HEADERS, NOW_SECS, claims, error_of};

#[test]
fn publish_becomes_a_tenant_scoped_append_without_copying_the_payload() {
    let mut h = Harness::connected(Limits::default());
    let frame = h
        .enc
        .publish(7, "room", b"hello", [("k", "v")], Some("key-1"));
    let actions = h.feed(2, frame.clone());
    let [
        Action::Publish {
            lane,
            request_id,
            message,
        },
    ] = actions.as_slice()
    else {
        panic!("{actions:?}")
    };
    assert_eq!((*lane, *request_id), (LaneId(2), 7));
    assert_eq!(&*message.channel.tenant, "acme");
    assert_eq!(&*message.channel.channel, "room");
    assert_eq!(&*message.sender, "alice");
    assert_eq!(&message.payload[..], b"hello");
    assert_eq!(message.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(message.headers.len(), 1);
    let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    assert!(frame_range.contains(&(message.payload.as_ptr() as usize)));
    assert_eq!(message.id.0 >> 80, u128::from(NOW_SECS * 1000));

    h.session.publish_completed(
        LaneId(2),
        7,
        Ok(Appended {
            offset: 5,
            id: MessageId(99),
            timestamp_ms: 1,
            duplicate: false,
        }),
    );
    let actions = h.drain();
    let [Action::Send { lane, frame }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(*lane, LaneId(2));
    let Ok(Body::PublishAck(ack)) = quiver_proto::decode(frame) else {
        panic!("no ack")
    };
    assert_eq!(
        (ack.request_id(), ack.offset(), ack.duplicate()),
        (7, 5, false)
    );
}

#[test]
fn store_failures_are_retryable_errors() {
    let mut h = Harness::connected(Limits::default());
    h.session.publish_completed(
        LaneId(0),
        3,
        Err(StoreError::Unavailable {
            reason: "down".into(),
            retry_after: Duration::from_millis(500),
        }),
    );
    let actions = h.drain();
    let Action::Send { frame, .. } = &actions[0] else {
        panic!()
    };
    let Ok(Body::Error(e)) = quiver_proto::decode(frame) else {
        panic!()
    };
    assert_eq!(
        (e.code(), e.retryable(), e.fatal(), e.retry_after_ms()),
        (ErrorCode::StoreUnavailable, true, false, 500)
    );
    assert!(!h.session.is_closed());
}

#[test]
fn request_level_refusals_keep_the_connection() {
    let limits = Limits {
        max_payload_bytes: 10,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    let cases = [
        (
            h.enc.publish(1, "has space", b"x", NO_HEADERS, None),
            ErrorCode::InvalidChannel,
        ),
        (
            h.enc.publish(2, "", b"x", NO_HEADERS, None),
            ErrorCode::InvalidChannel,
        ),
        (
            h.enc.publish(3, "room", &[0; 11], NO_HEADERS, None),
            ErrorCode::PayloadTooLarge,
        ),
        (
            h.enc
                .publish(4, "room", b"12345", [("name", "value")], None),
            ErrorCode::PayloadTooLarge,
        ),
        (h.enc.unsubscribe(5, 99), ErrorCode::NotSubscribed),
    ];
    for (frame, code) in cases {
        let actions = h.feed(0, frame);
        assert_eq!(error_of(&actions), (code, false));
    }
    assert!(!h.session.is_closed());
}

#[test]
fn token_channel_patterns_are_enforced() {
    let mut h = Harness::new(Limits::default());
    let limited = Claims {
        subscribe: Some(vec!["chat:*".into()]),
        publish: Some(vec!["chat:lobby".into()]),
        ..claims("acme", "bob")
    };
    h.hello(&limited);
    let frame = h.enc.publish(1, "chat:other", b"x", NO_HEADERS, None);
    assert_eq!(error_of(&h.feed(0, frame)), (ErrorCode::Forbidden, false));
    let frame = h.enc.publish(2, "chat:lobby", b"x", NO_HEADERS, None);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Publish { .. }]
    ));
    let frame = h.enc.subscribe(3, "private:1", None);
    assert_eq!(error_of(&h.feed(0, frame)), (ErrorCode::Forbidden, false));
    let frame = h.enc.history_request(
        4,
        "private:1",
        10,
        None,
        None,
        quiver_proto::fb::Direction::Backward,
    );
    assert_eq!(error_of(&h.feed(0, frame)), (ErrorCode::Forbidden, false));
    let frame = h.enc.subscribe(5, "chat:9", Some(3));
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Subscribe {
            start: quiver_session::StartAt::After(3),
            ..
        }]
    ));
}

#[test]
fn publish_rate_is_limited_by_a_token_bucket() {
    let limits = Limits {
        publish_rate_per_sec: 10,
        publish_burst: 2,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    for id in 1..=2 {
        let frame = h.enc.publish(id, "room", b"x", NO_HEADERS, None);
        assert!(matches!(
            h.feed(0, frame).as_slice(),
            [Action::Publish { .. }]
        ));
    }
    let frame = h.enc.publish(3, "room", b"x", NO_HEADERS, None);
    let actions = h.feed(0, frame.clone());
    assert_eq!(error_of(&actions), (ErrorCode::RateLimited, false));
    h.clock += Duration::from_millis(100);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Publish { .. }]
    ));
}

#[test]
fn go_away_refuses_new_requests() {
    let mut h = Harness::connected(Limits::default());
    h.session.go_away(1000);
    let actions = h.drain();
    let Action::Send { frame, .. } = &actions[0] else {
        panic!()
    };
    let Ok(Body::GoAway(g)) = quiver_proto::decode(frame) else {
        panic!("no GoAway")
    };
    assert_eq!(g.reconnect_after_ms(), 1000);
    let frame = h.enc.publish(1, "room", b"x", NO_HEADERS, None);
    let actions = h.feed(0, frame);
    assert_eq!(error_of(&actions), (ErrorCode::GoingAway, false));
}

#[test]
fn reserved_request_id_and_zero_limit_are_invalid() {
    let mut h = Harness::connected(Limits::default());
    let frame = h.enc.publish(0, "room", b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::InvalidRequest, false)
    );
    let frame = h.enc.history_request(
        1,
        "room",
        0,
        None,
        None,
        quiver_proto::fb::Direction::Forward,
    );
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::InvalidRequest, false)
    );
}
