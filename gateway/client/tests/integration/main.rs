//! End-to-end tests of the client over loopback QUIC against a scripted
//! mock server (`mock/`). One binary, grouped by area.
//!
//! The mock proves the client's own I/O paths. What only the real gateway
//! can prove belongs in the server's suite (`gateway/server/tests`):
//! - handshake refusals with real JWTs (expired, wrong tenant, bad alg) and
//!   the close code arriving before or without the Error frame;
//! - resume across a server restart with a durable store (offsets survive),
//!   and across a graceful shutdown with GoAway while publishes are in flight
//!   (each acknowledged exactly once, duplicates flagged);
//! - SlowConsumer triggered by a subscriber that stops reading, then a
//!   resume with no gap;
//! - RateLimited / PayloadTooLarge / Forbidden / TooManySubscriptions
//!   surfacing as `ClientError::Server` with the right code and retry hint;
//! - history paging (before/after, both directions, has_more) against a
//!   page cap smaller than the requested limit;
//! - many clients over a shared endpoint (load-test shape).

mod basics;
mod mock;
mod reconnect;

use quiver_client::{Message, Subscription};
use tokio::time::{Duration, timeout};

/// Every wait in these tests is bounded, so a bug fails a test rather than
/// hanging the suite.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The next message of `sub`, failing the test on error, end or timeout.
pub(crate) async fn next_message(sub: &mut Subscription) -> Message {
    match timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no message within {WAIT:?}"),
    }
}

/// Offsets of the next `n` messages.
pub(crate) async fn offsets(sub: &mut Subscription, n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_message(sub).await.offset);
    }
    out
}
