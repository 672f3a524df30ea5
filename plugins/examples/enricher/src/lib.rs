//! Adds the sender and the receive time to every message as headers
//! (`x-sender` and `x-received-ms`; the first name is configurable with
//! the config key `sender_header`).

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, clock, config, export};

struct Enricher;

impl Plugin for Enricher {
    fn on_publish(session: &SessionInfo, _: &str, message: Message) -> PublishVerdict {
        let name = config::get("sender_header").unwrap_or_else(|| "x-sender".into());
        PublishVerdict::Rewrite(
            message
                .with_header(name, session.user.clone())
                .with_header("x-received-ms", clock::now_ms().to_string()),
        )
    }
}

export!(Enricher, hooks: [on_publish]);
