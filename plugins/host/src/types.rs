//! The types the gateway passes to and gets from the host.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::CallError;

/// Who is calling a hook. Cloning is four reference-count bumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// From the verified token; selects the plugins that run.
    pub tenant: Arc<str>,
    /// The token's subject.
    pub user: Arc<str>,
    /// Unique per connection.
    pub session_id: Arc<str>,
    /// The client's self-declared name and version.
    pub client: Arc<str>,
}

/// One location update, for `on_track`.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// What moves: a courier, a vehicle, a parcel.
    pub entity: String,
    /// Latitude, WGS 84 degrees.
    pub lat: f64,
    /// Longitude, WGS 84 degrees.
    pub lon: f64,
    /// Metres, when the device reports it.
    pub accuracy: Option<f64>,
    /// Degrees clockwise from north.
    pub heading: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// When the device took the fix, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// A hook of the plugin world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `on-connect`: a client authenticated.
    Connect,
    /// `on-subscribe`: a client subscribes to a channel.
    Subscribe,
    /// `on-publish`: a client publishes a message.
    Publish,
    /// `on-track`: a client reports a position.
    Track,
}

impl Hook {
    /// Every hook, in declaration order.
    pub const ALL: [Hook; 4] = [Hook::Connect, Hook::Subscribe, Hook::Publish, Hook::Track];

    /// The WIT name (`on-connect`, ...), also the `hook` metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Connect => "on-connect",
            Hook::Subscribe => "on-subscribe",
            Hook::Publish => "on-publish",
            Hook::Track => "on-track",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A set of hooks; [`PluginHost::hooks`](crate::PluginHost::hooks) returns
/// the union over a tenant's active plugins, so the gateway can skip the
/// host entirely (no allocation, no await) for hooks nobody implements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HookSet(u8);

impl HookSet {
    /// No hooks.
    pub const EMPTY: HookSet = HookSet(0);

    /// Whether `hook` is in the set.
    pub fn contains(self, hook: Hook) -> bool {
        self.0 & (1 << hook.index()) != 0
    }

    /// The set with `hook` added.
    pub fn with(self, hook: Hook) -> HookSet {
        HookSet(self.0 | (1 << hook.index()))
    }

    /// The union of both sets.
    pub fn union(self, other: HookSet) -> HookSet {
        HookSet(self.0 | other.0)
    }

    /// Whether no hook is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The hooks in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Hook> {
        Hook::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl FromIterator<Hook> for HookSet {
    fn from_iter<I: IntoIterator<Item = Hook>>(iter: I) -> Self {
        iter.into_iter().fold(HookSet::EMPTY, HookSet::with)
    }
}

/// The outcome of `on_connect` or `on_subscribe` over a tenant's plugins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every plugin allowed (or none implements the hook).
    Allow,
    /// The first plugin (in name order) that denied, and its reason.
    Deny {
        /// The plugin's name.
        plugin: Arc<str>,
        /// Its reason, meant for the client.
        reason: String,
    },
    /// A fail-closed plugin failed; treat as a denial with a generic reason
    /// to the client (the host already logged `error`).
    Failed {
        /// The plugin's name.
        plugin: Arc<str>,
        /// What went wrong; for logs, not for clients.
        error: CallError,
    },
}

/// The outcome of `on_publish` over a tenant's plugins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishVerdict {
    /// Store and deliver this message: the original, or the last rewrite.
    Accept {
        /// The payload to store.
        payload: Bytes,
        /// The headers to store, in order.
        headers: Vec<(String, String)>,
    },
    /// The plugin that rejected, and the reason for the publisher.
    Reject {
        /// The plugin's name.
        plugin: Arc<str>,
        /// Its reason, meant for the publisher.
        reason: String,
    },
    /// Ack the publisher but store and deliver nothing.
    Drop {
        /// The plugin that dropped the message.
        plugin: Arc<str>,
    },
    /// A fail-closed plugin failed; reject with a generic reason (the host
    /// already logged `error`).
    Failed {
        /// The plugin's name.
        plugin: Arc<str>,
        /// What went wrong; for logs, not for clients.
        error: CallError,
    },
}

/// A message a tracking plugin asks the gateway to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackAlert {
    /// The plugin that raised it.
    pub plugin: Arc<str>,
    /// Where to publish it (in the session's tenant).
    pub channel: String,
    /// What to publish.
    pub payload: Bytes,
}

/// The outcome of `on_track` over a tenant's plugins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackVerdict {
    /// Keep the position; publish the alerts plugins raised, if any.
    Accept {
        /// Alerts in plugin order.
        alerts: Vec<TrackAlert>,
    },
    /// Discard the position.
    Drop {
        /// The plugin that dropped it.
        plugin: Arc<str>,
    },
    /// A fail-closed plugin failed; discard the position.
    Failed {
        /// The plugin's name.
        plugin: Arc<str>,
        /// What went wrong; for logs.
        error: CallError,
    },
}

/// How plugins publish (the `channels` capability). Implemented by the
/// gateway. The host passes the plugin's own tenant, so a plugin can never
/// reach another tenant. The gateway must not run `on_publish` plugins on
/// these messages: a plugin must not be able to loop on its own output.
pub trait ChannelPublisher: Send + Sync + 'static {
    /// Appends a message and returns its offset, or a reason safe to show
    /// to the plugin.
    fn publish(
        &self,
        tenant: &str,
        channel: &str,
        payload: Bytes,
        headers: Vec<(String, String)>,
    ) -> BoxFuture<'static, Result<u64, String>>;
}

/// What the host uses from the gateway. Passed in, never global, so tests
/// run several hosts in one process.
#[derive(Clone)]
pub struct HostServices {
    /// Plugin components and activation state ([`quiver_storage::PluginRegistry`])
    /// and the plugins' key-value data ([`quiver_storage::KeyValueStore`]).
    pub store: Arc<dyn quiver_storage::Store>,
    /// Backs the `channels` capability.
    pub publisher: Arc<dyn ChannelPublisher>,
    /// Where the plugin metrics are registered.
    pub metrics: prometheus::Registry,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices").finish_non_exhaustive()
    }
}
