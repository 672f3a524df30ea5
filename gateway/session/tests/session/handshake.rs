//! The handshake: Hello, token checks, version, deadline, and frames that
//! end the connection before or right after it.

use std::time::Duration;

use bytes::Bytes;
use quiver_proto::Body;
use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, Claims, LaneId, Limits};

use crate::harness::{
    Harness, NO_HEADERS, NOW_SECS, SECRET, claims, closes_with, error_of, now_at, token,
};

#[test]
fn hello_is_answered_with_welcome_and_limits() {
    let mut h = Harness::new(Limits::default());
    let actions = h.hello(&claims("acme", "alice"));
    let Action::Send { lane, frame } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(*lane, LaneId::CONTROL);
    let Ok(Body::Welcome(w)) = quiver_proto::decode(frame) else {
        panic!("not a Welcome")
    };
    assert_eq!(w.tenant(), Some("acme"));
    assert_eq!(w.user(), Some("alice"));
    assert_eq!(w.max_subscriptions(), 128);
    assert!(
        matches!(&actions[1], Action::Authenticated { tenant, user } if &**tenant == "acme" && &**user == "alice")
    );
}

#[test]
fn bad_tokens_are_refused_with_their_codes() {
    let cases: Vec<(String, ErrorCode)> = vec![
        ("".into(), ErrorCode::Unauthorized),
        ("not.a.jwt".into(), ErrorCode::Unauthorized),
        (
            // alg none, unsigned.
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIiwidGVuYW50IjoiYWNtZSIsImV4cCI6OTk5OTk5OTk5OX0.".into(),
            ErrorCode::Unauthorized,
        ),
        (claims("acme", "a").sign_hs256(b"wrong secret").expect("sign"), ErrorCode::Unauthorized),
        (claims("nobody", "a").sign_hs256(SECRET).expect("sign"), ErrorCode::Unauthorized),
        (
            Claims { exp: NOW_SECS - 3600, ..claims("acme", "a") }.sign_hs256(SECRET).expect("sign"),
            ErrorCode::TokenExpired,
        ),
        // Signed with globex's secret but claiming acme: the signature
        // must be checked with acme's keys, and fails.
        (claims("acme", "a").sign_hs256(b"globex-secret").expect("sign"), ErrorCode::Unauthorized),
    ];
    for (token, code) in cases {
        let mut h = Harness::new(Limits::default());
        let frame = h.enc.hello(1, &token, "test");
        let actions = h.feed(0, frame);
        assert_eq!(error_of(&actions), (code, true), "token {token:?}");
        assert!(closes_with(&actions, code));
        assert!(h.session.is_closed());
    }
}

#[test]
fn unsupported_version_and_frames_before_hello_are_fatal() {
    let mut h = Harness::new(Limits::default());
    let frame = h.enc.hello(2, &token(&claims("acme", "a")), "test");
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::UnsupportedVersion, true)
    );

    let mut h = Harness::new(Limits::default());
    let frame = h.enc.publish(1, "room", b"hi", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::UnexpectedFrame, true)
    );

    let mut h = Harness::new(Limits::default());
    let frame = h.enc.hello(1, &token(&claims("acme", "a")), "test");
    assert_eq!(
        error_of(&h.feed(1, frame)),
        (ErrorCode::UnexpectedFrame, true)
    );
}

#[test]
fn a_second_hello_is_fatal() {
    let mut h = Harness::connected(Limits::default());
    let actions = h.hello(&claims("acme", "alice"));
    assert_eq!(error_of(&actions), (ErrorCode::UnexpectedFrame, true));
}

#[test]
fn handshake_times_out() {
    let mut h = Harness::new(Limits::default());
    let deadline = h.session.poll_timeout().expect("handshake deadline");
    assert_eq!(deadline, h.clock + Duration::from_secs(10));
    h.session
        .handle_timeout(now_at(deadline - Duration::from_millis(1)));
    assert!(h.drain().is_empty());
    h.session.handle_timeout(now_at(deadline));
    assert_eq!(error_of(&h.drain()), (ErrorCode::HandshakeTimeout, true));
}

#[test]
fn garbage_is_a_malformed_frame() {
    let mut h = Harness::connected(Limits::default());
    let actions = h.feed(0, Bytes::from_static(&[8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(error_of(&actions), (ErrorCode::MalformedFrame, true));
}
