//! The per-connection protocol state machine.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_proto::fb::{self, ErrorCode};
use quiver_proto::{Body, DecodeError, Encoder, PROTOCOL_VERSION};

use crate::action::{Action, LaneId, SubscriptionId};
use crate::auth::{AuthError, Authenticator, Identity};
use crate::channel::ChannelRules;
use crate::hooks::HookCall;
use crate::ids::IdGenerator;
use crate::limits::Limits;
use crate::rate::TokenBucket;

/// The caller's clock, read once per input: a monotonic instant for
/// timeouts and rate limits, and wall time for message timestamps and
/// token expiry.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub instant: Instant,
    pub unix_ms: u64,
}

impl Now {
    pub fn system() -> Self {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            instant: Instant::now(),
            unix_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    AwaitingHello,
    /// The token is valid; the tenant's plugins decide on the connection.
    Authorizing,
    Active,
    /// GoAway was sent: in-flight work finishes, new requests are refused.
    Draining,
    Closed,
}

/// One client connection's protocol state: handshake, authentication,
/// subscriptions, limits.
///
/// It performs no I/O and reads no clock. Feed it with `handle_frame`,
/// `handle_decode_error`, `handle_timeout` and the `*_completed` methods;
/// after each call drain `poll_action` until it returns `None`, and arm a
/// timer for `poll_timeout`.
#[derive(Debug)]
pub struct Session {
    pub(crate) auth: Arc<Authenticator>,
    /// Server-wide limits; replaced by the tenant's after Hello.
    pub(crate) limits: Limits,
    pub(crate) phase: Phase,
    pub(crate) identity: Option<Identity>,
    pub(crate) by_id: HashMap<SubscriptionId, Arc<str>>,
    pub(crate) by_channel: HashMap<Arc<str>, SubscriptionId>,
    pub(crate) next_subscription_id: SubscriptionId,
    /// Created at Hello, once the tenant's rate is known.
    pub(crate) bucket: Option<TokenBucket>,
    /// Created at the first Track.
    pub(crate) track_bucket: Option<TokenBucket>,
    pub(crate) channels: Arc<ChannelRules>,
    pub(crate) encoder: Encoder,
    pub(crate) ids: IdGenerator,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) handshake_deadline: Instant,
    pub(crate) session_id: Arc<str>,
    /// The client's self-description from Hello, for plugins and logs.
    pub(crate) client: Arc<str>,
    /// Wall time of the Hello, echoed in Welcome.
    pub(crate) server_time_ms: u64,
}

impl Session {
    /// A new connection. `seed` feeds the message-id randomness and
    /// `session_id` names the connection in logs and in Welcome.
    pub fn new(
        auth: Arc<Authenticator>,
        limits: Limits,
        session_id: impl Into<Arc<str>>,
        seed: u64,
        now: Now,
    ) -> Self {
        Self {
            auth,
            handshake_deadline: now.instant + limits.handshake_timeout,
            limits,
            phase: Phase::AwaitingHello,
            identity: None,
            by_id: HashMap::new(),
            by_channel: HashMap::new(),
            next_subscription_id: 1,
            bucket: None,
            track_bucket: None,
            channels: Arc::default(),
            encoder: Encoder::new(),
            ids: IdGenerator::new(seed),
            actions: VecDeque::new(),
            session_id: session_id.into(),
            client: Arc::from(""),
            server_time_ms: 0,
        }
    }

    /// Uses these channel rules instead of the defaults (`track:*` is
    /// tracking, everything else messages).
    pub fn with_channel_rules(mut self, channels: Arc<ChannelRules>) -> Self {
        self.channels = channels;
        self
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase == Phase::AwaitingHello).then_some(self.handshake_deadline)
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    pub fn session_id(&self) -> &Arc<str> {
        &self.session_id
    }

    /// The client name the Hello carried.
    pub fn client(&self) -> &Arc<str> {
        &self.client
    }

    /// The limits in force (the tenant's once authenticated).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn subscription_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.phase == Phase::AwaitingHello && now.instant >= self.handshake_deadline {
            let secs = self.limits.handshake_timeout.as_secs_f32();
            self.fail(
                ErrorCode::HandshakeTimeout,
                format!("no Hello within {secs} s of connecting"),
            );
        }
    }

    /// A lane could not be split into frames (oversized, truncated, ...).
    pub fn handle_decode_error(&mut self, error: &DecodeError) {
        self.fail(error.code(), error.to_string());
    }

    /// The client finished its control stream: it is done with the session.
    pub fn handle_control_finished(&mut self) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.actions.push_back(Action::Close {
                code: ErrorCode::None,
                reason: "client closed its control stream".into(),
            });
        }
    }

    /// One complete frame from `lane`. `frame` is kept alive by publishes so
    /// their payloads are slices of it, not copies.
    pub fn handle_frame(&mut self, lane: LaneId, frame: &Bytes, now: Now) {
        if self.phase == Phase::Closed {
            return;
        }
        let body = match quiver_proto::decode(frame) {
            Ok(body) => body,
            Err(error) => return self.handle_decode_error(&error),
        };
        match (self.phase, body) {
            (Phase::AwaitingHello, Body::Hello(hello)) if lane == LaneId::CONTROL => {
                self.handle_hello(hello, now);
            }
            (Phase::Authorizing, _) => self.fail(
                ErrorCode::Internal,
                "server error: a frame was handled before the connect hook finished".into(),
            ),
            (Phase::AwaitingHello, _) => self.fail(
                ErrorCode::UnexpectedFrame,
                "the first frame must be Hello, on the first bidirectional stream".into(),
            ),
            (_, Body::Publish(req)) => self.handle_publish(lane, frame, req, now),
            (_, Body::Subscribe(req)) => self.handle_subscribe(lane, req),
            (_, Body::Unsubscribe(req)) => self.handle_unsubscribe(lane, req),
            (_, Body::HistoryRequest(req)) => self.handle_history(lane, req),
            (_, Body::Edit(req)) => self.handle_edit(lane, frame, req, now),
            (_, Body::Track(req)) => self.handle_track(Some(lane), req, now),
            (_, other) => self.fail(
                ErrorCode::UnexpectedFrame,
                format!("a client may not send {} at this point", other.name()),
            ),
        }
    }

    fn handle_hello(&mut self, hello: fb::Hello<'_>, now: Now) {
        if hello.version() != PROTOCOL_VERSION {
            return self.fail(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                    hello.version()
                ),
            );
        }
        let verified = self
            .auth
            .verify(hello.token().unwrap_or(""), now.unix_ms / 1000);
        let (identity, tenant) = match verified {
            Ok(ok) => ok,
            Err(error) => {
                let code = match error {
                    AuthError::Expired { .. } => ErrorCode::TokenExpired,
                    _ => ErrorCode::Unauthorized,
                };
                return self.fail(code, error.to_string());
            }
        };
        self.limits = self.limits.with_overrides(&tenant.limits);
        self.bucket = Some(TokenBucket::new(
            self.limits.publish_rate_per_sec,
            self.limits.publish_burst,
            now.instant,
        ));
        self.client = Arc::from(hello.client().unwrap_or(""));
        self.server_time_ms = now.unix_ms;
        self.identity = Some(identity);
        self.phase = Phase::Authorizing;
        self.actions.push_back(Action::Hook(HookCall::Connect));
    }

    /// The connection is admitted: Welcome, and requests from now on.
    pub(crate) fn welcome(&mut self) {
        let Some(identity) = self.identity.as_ref() else {
            return;
        };
        let welcome = quiver_proto::WelcomeInfo {
            version: PROTOCOL_VERSION,
            session_id: self.session_id.to_string(),
            tenant: identity.tenant.to_string(),
            user: identity.user.to_string(),
            server_time_ms: self.server_time_ms,
            max_frame_bytes: self.limits.max_frame_bytes,
            max_payload_bytes: self.limits.max_payload_bytes,
            max_subscriptions: self.limits.max_subscriptions,
            publish_rate_per_sec: self.limits.publish_rate_per_sec,
            publish_burst: self.limits.publish_burst,
            idle_timeout_ms: millis(self.limits.idle_timeout),
            keepalive_interval_ms: millis(self.limits.keepalive_interval),
        };
        let authenticated = Action::Authenticated {
            tenant: identity.tenant.clone(),
            user: identity.user.clone(),
        };
        let frame = self.encoder.welcome(&welcome);
        self.send(LaneId::CONTROL, frame);
        self.actions.push_back(authenticated);
        self.phase = Phase::Active;
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
