//! The session state machine driven in memory: frames in, actions out, on
//! a virtual clock. No sockets, no store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_proto::fb::ErrorCode;
use quiver_proto::{Body, Encoder};
use quiver_session::{
    Action, Authenticator, Claims, HookCall, HookVerdict, LaneId, LimitOverrides, Limits, Now,
    Session, Tenant, TenantKey,
};
use quiver_storage::{Appended, MessageId, StoreError};

const SECRET: &[u8] = b"acme-secret-acme-secret-acme-sec";
const NOW_SECS: u64 = 1_800_000_000;
const NO_HEADERS: [(&str, &str); 0] = [];

fn auth() -> Arc<Authenticator> {
    Arc::new(Authenticator::new([
        Tenant {
            id: "acme".into(),
            keys: vec![TenantKey::Hs256(SECRET.to_vec())],
            limits: LimitOverrides::default(),
        },
        Tenant {
            id: "globex".into(),
            keys: vec![TenantKey::Hs256(b"globex-secret".to_vec())],
            limits: LimitOverrides {
                max_subscriptions: Some(2),
                ..LimitOverrides::default()
            },
        },
    ]))
}

fn claims(tenant: &str, user: &str) -> Claims {
    Claims {
        sub: user.into(),
        tenant: tenant.into(),
        exp: NOW_SECS + 3600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: None,
    }
}

fn token(claims: &Claims) -> String {
    let secret: &[u8] = if claims.tenant == "globex" {
        b"globex-secret"
    } else {
        SECRET
    };
    claims.sign_hs256(secret).expect("sign")
}

type Plugins = Box<dyn FnMut(&HookCall) -> HookVerdict>;

struct Harness {
    session: Session,
    clock: Instant,
    enc: Encoder,
    /// Stands in for the tenant's plugins: answers every hook.
    plugins: Plugins,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        let clock = Instant::now();
        let session = Session::new(auth(), limits, "s1", 42, now_at(clock));
        Self {
            session,
            clock,
            enc: Encoder::new(),
            plugins: Box::new(|_| HookVerdict::Allow),
        }
    }

    fn now(&self) -> Now {
        now_at(self.clock)
    }

    fn feed(&mut self, lane: u64, frame: Bytes) -> Vec<Action> {
        let now = self.now();
        self.session.handle_frame(LaneId(lane), &frame, now);
        self.drain()
    }

    /// Every action, with hooks answered by `plugins` as the runtime would.
    fn drain(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Hook(call) => {
                    let verdict = (self.plugins)(&call);
                    self.session.hook_completed(call, verdict);
                }
                other => actions.push(other),
            }
        }
        actions
    }

    fn hello(&mut self, claims: &Claims) -> Vec<Action> {
        let frame = self.enc.hello(1, &token(claims), "test");
        self.feed(0, frame)
    }

    fn connected(limits: Limits) -> Self {
        let mut h = Self::new(limits);
        let actions = h.hello(&claims("acme", "alice"));
        assert!(matches!(
            actions.as_slice(),
            [Action::Send { .. }, Action::Authenticated { .. }]
        ));
        h
    }
}

fn now_at(instant: Instant) -> Now {
    Now {
        instant,
        unix_ms: NOW_SECS * 1000,
    }
}

/// The error code of the one Error frame sent, and whether it was fatal.
fn error_of(actions: &[Action]) -> (ErrorCode, bool) {
    for action in actions {
        if let Action::Send { frame, .. } = action
            && let Ok(Body::Error(e)) = quiver_proto::decode(frame)
        {
            return (e.code(), e.fatal());
        }
    }
    panic!("no Error frame in {actions:?}");
}

fn closes_with(actions: &[Action], code: ErrorCode) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { code: c, .. } if *c == code))
}

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
fn subscriptions_are_counted_and_unique_per_channel() {
    let mut h = Harness::new(Limits::default());
    h.hello(&claims("globex", "g"));
    let frame = h.enc.subscribe(1, "a", None);
    let actions = h.feed(0, frame);
    let [
        Action::Subscribe {
            subscription_id,
            channel,
            ..
        },
    ] = actions.as_slice()
    else {
        panic!()
    };
    assert_eq!(&*channel.tenant, "globex");
    let first = *subscription_id;
    let frame = h.enc.subscribe(2, "a", None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::AlreadySubscribed, false)
    );
    let frame = h.enc.subscribe(3, "b", None);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Subscribe { .. }]
    ));
    // globex allows two subscriptions per connection.
    let frame = h.enc.subscribe(4, "c", None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::TooManySubscriptions, false)
    );
    let frame = h.enc.unsubscribe(5, first);
    let actions = h.feed(0, frame);
    assert!(
        matches!(actions[0], Action::Unsubscribe { subscription_id } if subscription_id == first)
    );
    let frame = h.enc.subscribe(6, "c", None);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Subscribe { .. }]
    ));
}

#[test]
fn history_pages_are_capped_and_report_more() {
    let limits = Limits {
        max_history_page: 50,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    let frame = h.enc.history_request(
        9,
        "room",
        500,
        Some(100),
        None,
        quiver_proto::fb::Direction::Backward,
    );
    let actions = h.feed(0, frame);
    let [Action::History { range, .. }] = actions.as_slice() else {
        panic!()
    };
    assert_eq!(
        (range.limit, range.before, range.after),
        (51, Some(100), None)
    );
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
fn slow_consumers_are_closed() {
    let mut h = Harness::connected(Limits::default());
    let frame = h.enc.subscribe(1, "room", None);
    h.feed(0, frame);
    h.session.slow_consumer(1);
    let actions = h.drain();
    assert_eq!(error_of(&actions), (ErrorCode::SlowConsumer, true));
    assert!(closes_with(&actions, ErrorCode::SlowConsumer));
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

#[test]
fn history_pages_are_cut_to_fit_one_frame() {
    let limits = Limits {
        max_frame_bytes: 10_000,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    let messages: Vec<_> = (1..=5)
        .map(|offset| quiver_storage::StoredMessage {
            offset,
            id: MessageId(offset.into()),
            timestamp_ms: 0,
            sender: "alice".into(),
            payload: Bytes::from(vec![b'x'; 3_000]),
            headers: vec![],
            edit: None,
            state: quiver_storage::ItemState::Original,
        })
        .collect();
    h.session.history_completed(LaneId(0), 1, 10, Ok(messages));
    let actions = h.drain();
    let Action::Send { frame, .. } = &actions[0] else {
        panic!()
    };
    assert!(frame.len() <= 10_004);
    let Ok(Body::HistoryPage(page)) = quiver_proto::decode(frame) else {
        panic!("no page")
    };
    assert_eq!(page.messages().map(|m| m.len()), Some(3));
    assert!(page.has_more());
}

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

#[test]
fn edits_are_validated_then_become_appends_with_their_target() {
    let mut h = Harness::connected(Limits::default());
    let update = h
        .enc
        .edit(3, "feed", 5, false, b"v2", [("rev", "2")], Some("k"));
    let actions = h.feed(1, update);
    let [Action::Publish { message, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    let edit = message.edit.expect("an edit");
    assert_eq!(
        (edit.target, edit.kind),
        (5, quiver_storage::EditKind::Update)
    );
    assert_eq!(&message.payload[..], b"v2");

    let delete = h.enc.edit(4, "feed", 5, true, b"", NO_HEADERS, None);
    let actions = h.feed(1, delete);
    let [Action::Publish { message, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(
        message.edit.map(|e| e.kind),
        Some(quiver_storage::EditKind::Delete)
    );

    // A delete with content, and target 0, are invalid.
    let bad = h.enc.edit(5, "feed", 5, true, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, bad)),
        (ErrorCode::InvalidRequest, false)
    );
    let zero = h.enc.edit(6, "feed", 0, false, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, zero)),
        (ErrorCode::InvalidRequest, false)
    );
    // A tracking channel takes no edits.
    let track = h
        .enc
        .edit(7, "track:city", 1, false, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, track)),
        (ErrorCode::WrongChannelKind, false)
    );
    // The runtime found no item at the target.
    h.session.edit_target_missing(LaneId(1), 3, 5);
    assert_eq!(error_of(&h.drain()), (ErrorCode::NotFound, false));
}

// --- Tracking: positions from datagrams and streams --------------------

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
