//! Plugin hooks answering connects, publishes and subscriptions.

use bytes::Bytes;
use quiver_proto::Body;
use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, HookCall, HookVerdict, Limits};

use crate::harness::{Harness, NO_HEADERS, claims, closes_with, error_of};

#[test]
fn plugins_can_refuse_a_connection() {
    let mut h = Harness::new(Limits::default());
    h.plugins = Box::new(|call| match call {
        HookCall::Connect => HookVerdict::Deny("banned".into()),
        _ => HookVerdict::Allow,
    });
    let actions = h.hello(&claims("acme", "alice"));
    assert_eq!(error_of(&actions), (ErrorCode::Denied, true));
    assert!(closes_with(&actions, ErrorCode::Denied));

    let mut h = Harness::new(Limits::default());
    h.plugins = Box::new(|_| HookVerdict::Failed("trap".into()));
    let actions = h.hello(&claims("acme", "alice"));
    assert_eq!(error_of(&actions), (ErrorCode::PluginFailed, true));
}

#[test]
fn plugins_rewrite_drop_or_refuse_publishes() {
    let mut h = Harness::connected(Limits {
        max_payload_bytes: 100,
        ..Limits::default()
    });
    h.plugins = Box::new(|call| match call {
        HookCall::Publish { message, .. } => match &message.payload[..] {
            b"rewrite" => HookVerdict::Rewrite {
                payload: Bytes::from_static(b"clean"),
                headers: vec![quiver_storage::Header {
                    name: "x-mod".into(),
                    value: "1".into(),
                }],
            },
            b"huge" => HookVerdict::Rewrite {
                payload: Bytes::from(vec![0; 101]),
                headers: vec![],
            },
            b"drop" => HookVerdict::Drop,
            b"deny" => HookVerdict::Deny("no swearing".into()),
            b"fail" => HookVerdict::Failed("cpu budget".into()),
            _ => HookVerdict::Allow,
        },
        _ => HookVerdict::Allow,
    });
    let frame = h.enc.publish(1, "room", b"rewrite", NO_HEADERS, None);
    let actions = h.feed(0, frame);
    let [Action::Publish { message, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(&message.payload[..], b"clean");
    assert_eq!(message.headers[0].name, "x-mod");

    let frame = h.enc.publish(2, "room", b"drop", NO_HEADERS, None);
    let actions = h.feed(0, frame);
    let [Action::Send { frame, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    let Ok(Body::PublishAck(ack)) = quiver_proto::decode(frame) else {
        panic!("no ack")
    };
    assert!(ack.dropped());
    assert_eq!(ack.offset(), 0);

    let frame = h.enc.publish(3, "room", b"deny", NO_HEADERS, None);
    assert_eq!(error_of(&h.feed(0, frame)), (ErrorCode::Denied, false));
    let frame = h.enc.publish(4, "room", b"fail", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::PluginFailed, false)
    );
    let frame = h.enc.publish(5, "room", b"huge", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::PluginFailed, false)
    );
    assert!(!h.session.is_closed());
}

#[test]
fn a_denied_subscription_frees_its_slot() {
    let mut h = Harness::connected(Limits {
        max_subscriptions: 1,
        ..Limits::default()
    });
    h.plugins = Box::new(|call| match call {
        HookCall::Subscribe { channel, .. } if channel.channel.starts_with("private:") => {
            HookVerdict::Deny("members only".into())
        }
        _ => HookVerdict::Allow,
    });
    let frame = h.enc.subscribe(1, "private:vip", None);
    assert_eq!(error_of(&h.feed(0, frame)), (ErrorCode::Denied, false));
    let frame = h.enc.subscribe(2, "private:vip", None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::Denied, false),
        "not AlreadySubscribed"
    );
    let frame = h.enc.subscribe(3, "lobby", None);
    assert!(
        matches!(h.feed(0, frame).as_slice(), [Action::Subscribe { .. }]),
        "slot is free"
    );
}
