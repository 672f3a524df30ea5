//! Tracking: positions from datagrams and streams.

use std::time::Duration;

use bytes::Bytes;
use quiver_proto::Body;
use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, Claims, HookCall, HookVerdict, Limits};

use crate::harness::{Harness, NO_HEADERS, NOW_SECS, claims};

fn courier() -> Claims {
    Claims {
        track: Some(vec!["courier-*".into()]),
        ..claims("acme", "carol")
    }
}

fn position(entity: &str, lat: f64) -> quiver_proto::PositionRef<'_> {
    quiver_proto::PositionRef {
        entity,
        lat,
        lon: 13.4,
        accuracy: None,
        heading: None,
        speed: None,
        timestamp_ms: NOW_SECS * 1000,
        user: None,
    }
}

impl Harness {
    fn datagram(&mut self, datagram: Bytes) -> Vec<Action> {
        let now = self.now();
        self.session.handle_datagram(&datagram, now);
        self.drain()
    }

    fn tracker(claims: &Claims) -> Self {
        let mut h = Self::new(Limits::default());
        let actions = h.hello(claims);
        assert!(matches!(
            actions.as_slice(),
            [Action::Send { .. }, Action::Authenticated { .. }]
        ));
        h
    }
}

fn dropped(actions: &[Action]) -> Vec<quiver_session::TrackDrop> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::TrackDropped(reason) => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_valid_position_goes_through_the_on_track_hook_and_is_tracked() {
    let mut h = Harness::tracker(&courier());
    let mut asked = 0;
    h.plugins = Box::new(move |call| {
        if let HookCall::Track { position, .. } = call {
            assert_eq!(&*position.entity, "courier-1");
            asked += 1;
            assert_eq!(asked, 1);
        }
        HookVerdict::Allow
    });
    let frame = h.enc.track("track:city", &position("courier-1", 52.5));
    let actions = h.datagram(frame);
    match actions.as_slice() {
        [Action::Track { channel, position }] => {
            assert_eq!(
                (&*channel.tenant, &*channel.channel),
                ("acme", "track:city")
            );
            assert_eq!((position.lat, &*position.user), (52.5, "carol"));
        }
        other => panic!("expected Track, got {other:?}"),
    }
}

#[test]
fn refused_datagrams_are_counted_and_never_close_the_connection() {
    let mut h = Harness::tracker(&courier());
    let cases = [
        (
            Bytes::from_static(b"\x04\x00\x00\x00junk"),
            quiver_session::TrackDrop::Malformed,
        ),
        (
            h.enc.hello(1, "x", "y"),
            quiver_session::TrackDrop::Malformed,
        ),
        (
            h.enc.track("chat:lobby", &position("courier-1", 1.0)),
            quiver_session::TrackDrop::WrongChannelKind,
        ),
        (
            h.enc.track("track:city", &position("truck-1", 1.0)),
            quiver_session::TrackDrop::Forbidden,
        ),
        (
            h.enc.track("track:city", &position("courier-1", 91.0)),
            quiver_session::TrackDrop::Invalid,
        ),
        (
            h.enc.track("track:city", &position("", 1.0)),
            quiver_session::TrackDrop::Invalid,
        ),
    ];
    for (datagram, reason) in cases {
        let actions = h.datagram(datagram);
        assert_eq!(dropped(&actions), [reason]);
        assert_eq!(
            actions.len(),
            1,
            "a datagram refusal sends nothing: {actions:?}"
        );
    }
    assert!(!h.session.is_closed());
    // Still serving: a valid position is tracked.
    let frame = h.enc.track("track:city", &position("courier-1", 1.0));
    assert!(matches!(
        h.datagram(frame).as_slice(),
        [Action::Track { .. }]
    ));
}

#[test]
fn a_refused_track_on_a_stream_is_answered_without_closing() {
    let mut h = Harness::tracker(&claims("acme", "dave"));
    let frame = h.enc.track("track:city", &position("courier-1", 1.0));
    let actions = h.feed(0, frame);
    assert_eq!(dropped(&actions), [quiver_session::TrackDrop::Forbidden]);
    let error = actions
        .iter()
        .find_map(|a| match a {
            Action::Send { frame, .. } => match quiver_proto::decode(frame) {
                Ok(Body::Error(e)) => Some((e.request_id(), e.code(), e.fatal())),
                _ => None,
            },
            _ => None,
        })
        .expect("an Error frame");
    assert_eq!(error, (0, ErrorCode::Forbidden, false));
    assert!(!h.session.is_closed());
}

#[test]
fn the_track_rate_limit_drops_the_excess() {
    let limits = Limits {
        track_rate_per_sec: 3,
        ..Limits::default()
    };
    let mut h = Harness::new(limits);
    h.hello(&courier());
    let mut tracked = 0;
    let mut limited = 0;
    for i in 0..5 {
        let frame = h
            .enc
            .track("track:city", &position("courier-1", f64::from(i)));
        let actions = h.datagram(frame);
        tracked += actions
            .iter()
            .filter(|a| matches!(a, Action::Track { .. }))
            .count();
        limited += dropped(&actions).len();
    }
    assert_eq!((tracked, limited), (3, 2));
    // The bucket refills with time.
    h.clock += Duration::from_secs(1);
    let frame = h.enc.track("track:city", &position("courier-1", 9.0));
    assert!(matches!(
        h.datagram(frame).as_slice(),
        [Action::Track { .. }]
    ));
}

#[test]
fn messages_are_refused_on_tracking_channels_and_alerts_are_published() {
    let mut h = Harness::tracker(&courier());
    let frame = h.enc.publish(7, "track:city", b"hi", NO_HEADERS, None);
    let actions = h.feed(0, frame);
    let code = actions.iter().find_map(|a| match a {
        Action::Send { frame, .. } => match quiver_proto::decode(frame) {
            Ok(Body::Error(e)) => Some((e.request_id(), e.code())),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(code, Some((7, ErrorCode::WrongChannelKind)));
    // An on-track plugin's alert becomes a message of the same tenant.
    h.plugins = Box::new(|_| {
        HookVerdict::Alerts(vec![quiver_session::Alert {
            channel: "alerts:depot".into(),
            payload: Bytes::from_static(b"{\"event\":\"enter\"}"),
        }])
    });
    let frame = h.enc.track("track:city", &position("courier-1", 1.0));
    let actions = h.datagram(frame);
    assert!(matches!(
        actions.as_slice(),
        [Action::Alert { .. }, Action::Track { .. }]
    ));
    if let Action::Alert { message } = &actions[0] {
        assert_eq!(
            (&*message.channel.tenant, &*message.channel.channel),
            ("acme", "alerts:depot")
        );
        assert_eq!(&*message.sender, "carol");
    }
}
