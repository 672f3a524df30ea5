//! Quiver's session core: the protocol rules of one client connection as a
//! state machine with no I/O and no clock of its own.
//!
//! Transport adapters (QUIC today; WebTransport and WebSocket later) split
//! their streams into frames and feed them to a [`Session`]; the session
//! answers with [`Action`]s (send this frame, append that message, start
//! that subscription, close). Every rule — the handshake, token checks,
//! channel permissions, limits, rate limits — lives here, so every
//! transport enforces the same ones and tests drive them without sockets.

mod action;
pub mod auth;
pub mod channel;
mod hooks;
mod ids;
mod limits;
mod outcomes;
mod rate;
mod requests;
mod session;
mod tracking;

pub use action::{Action, LaneId, StartAt, SubscriptionId, TrackDrop};
pub use auth::{AuthError, Authenticator, Claims, Identity, Tenant, TenantKey};
pub use channel::{ChannelKind, ChannelOptions, ChannelRules};
pub use hooks::{Alert, HookCall, HookVerdict};
pub use limits::{LimitOverrides, Limits};
pub use outcomes::message_meta;
pub use session::{Now, Session};
