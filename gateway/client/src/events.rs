//! Connection lifecycle events, for logs, metrics and tests.

use std::time::Duration;

use crate::error::ClientError;

/// Something that happened to the client's connection.
///
/// Read them from [`Client::events`](crate::Client::events). Delivery is
/// best effort: a receiver that falls behind misses the oldest events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection was lost; a reconnect follows if the policy allows.
    Disconnected {
        /// Why it ended.
        cause: ClientError,
    },
    /// The server announced its shutdown; the client reconnects after
    /// `reconnect_after` (or sooner if the server closes first).
    GoAway {
        /// The server's explanation.
        message: String,
        /// The delay the server asked for.
        reconnect_after: Duration,
    },
    /// A reconnect attempt starts after `delay`.
    Reconnecting {
        /// 1 for the first attempt of this outage.
        attempt: u32,
        /// Backoff before the attempt.
        delay: Duration,
    },
    /// A reconnect attempt failed; another follows if the policy allows.
    ReconnectFailed {
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: ClientError,
    },
    /// The client is connected again; subscriptions are being resumed and
    /// in-flight requests re-sent.
    Reconnected {
        /// The new connection's Welcome.
        welcome: crate::Welcome,
        /// Successful reconnects since the client was created.
        reconnects: u64,
    },
    /// The client stopped for good: `None` after `close()` or when every
    /// handle was dropped, `Some` when it gave up.
    Closed {
        /// Why, unless it was asked to.
        error: Option<ClientError>,
    },
}
