//! Rejects a user's publishes past `limit` per `window_ms` (fixed windows,
//! counted in the plugin's key-value store, so the limit holds across
//! connections and gateway nodes).

use std::time::Duration;

use quiver_plugin_sdk::{
    Message, Plugin, PublishVerdict, SessionInfo, clock, config, export, kv, log,
};

struct RateLimiter;

impl Plugin for RateLimiter {
    fn on_publish(session: &SessionInfo, _: &str, _: Message) -> PublishVerdict {
        let limit: i64 = config::get_or("limit", 10);
        let window_ms: u64 = config::get_or("window_ms", 1000).max(1);
        let window = clock::now_ms() / window_ms;
        let key = format!("rate:{}:{window}", session.user);
        // The TTL outlives the window a little, so the key is gone soon
        // after it stops mattering.
        let ttl = Some(Duration::from_millis(window_ms * 2));
        match kv::increment(&key, 1, ttl) {
            Ok(n) if n > limit => PublishVerdict::reject(format!(
                "rate limit: at most {limit} messages per {window_ms} ms"
            )),
            Ok(_) => PublishVerdict::Accept,
            // The store is down: let messages through rather than block
            // every publisher of the tenant.
            Err(e) => {
                log::warn(
                    "rate limiter store error; letting the message through",
                    &[("error", &e)],
                );
                PublishVerdict::Accept
            }
        }
    }
}

export!(RateLimiter, hooks: [on_publish]);
