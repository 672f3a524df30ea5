//! The shared harness: a tenant directory, tokens, and a [`Harness`] that
//! drives one [`Session`] on a virtual clock, answering its plugin hooks.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use quiver_proto::fb::ErrorCode;
use quiver_proto::{Body, Encoder};
use quiver_session::{
    Action, Authenticator, Claims, HookCall, HookVerdict, LaneId, LimitOverrides, Limits, Now,
    Session, Tenant, TenantKey,
};

pub(crate) const SECRET: &[u8] = b"acme-secret-acme-secret-acme-sec";
pub(crate) const NOW_SECS: u64 = 1_800_000_000;
pub(crate) const NO_HEADERS: [(&str, &str); 0] = [];

pub(crate) fn auth() -> Arc<Authenticator> {
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

pub(crate) fn claims(tenant: &str, user: &str) -> Claims {
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

pub(crate) fn token(claims: &Claims) -> String {
    let secret: &[u8] = if claims.tenant == "globex" {
        b"globex-secret"
    } else {
        SECRET
    };
    claims.sign_hs256(secret).expect("sign")
}

pub(crate) type Plugins = Box<dyn FnMut(&HookCall) -> HookVerdict>;

pub(crate) struct Harness {
    pub(crate) session: Session,
    pub(crate) clock: Instant,
    pub(crate) enc: Encoder,
    /// Stands in for the tenant's plugins: answers every hook.
    pub(crate) plugins: Plugins,
}

impl Harness {
    pub(crate) fn new(limits: Limits) -> Self {
        let clock = Instant::now();
        let session = Session::new(auth(), limits, "s1", 42, now_at(clock));
        Self {
            session,
            clock,
            enc: Encoder::new(),
            plugins: Box::new(|_| HookVerdict::Allow),
        }
    }

    pub(crate) fn now(&self) -> Now {
        now_at(self.clock)
    }

    pub(crate) fn feed(&mut self, lane: u64, frame: Bytes) -> Vec<Action> {
        let now = self.now();
        self.session.handle_frame(LaneId(lane), &frame, now);
        self.drain()
    }

    /// Every action, with hooks answered by `plugins` as the runtime would.
    pub(crate) fn drain(&mut self) -> Vec<Action> {
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

    pub(crate) fn hello(&mut self, claims: &Claims) -> Vec<Action> {
        let frame = self.enc.hello(1, &token(claims), "test");
        self.feed(0, frame)
    }

    pub(crate) fn connected(limits: Limits) -> Self {
        let mut h = Self::new(limits);
        let actions = h.hello(&claims("acme", "alice"));
        assert!(matches!(
            actions.as_slice(),
            [Action::Send { .. }, Action::Authenticated { .. }]
        ));
        h
    }
}

pub(crate) fn now_at(instant: Instant) -> Now {
    Now {
        instant,
        unix_ms: NOW_SECS * 1000,
    }
}

/// The error code of the one Error frame sent, and whether it was fatal.
pub(crate) fn error_of(actions: &[Action]) -> (ErrorCode, bool) {
    for action in actions {
        if let Action::Send { frame, .. } = action
            && let Ok(Body::Error(e)) = quiver_proto::decode(frame)
        {
            return (e.code(), e.fatal());
        }
    }
    panic!("no Error frame in {actions:?}");
}

pub(crate) fn closes_with(actions: &[Action], code: ErrorCode) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { code: c, .. } if *c == code))
}
