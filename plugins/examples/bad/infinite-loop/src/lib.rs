//! BAD ON PURPOSE: spins forever in `on_publish` when the payload starts
//! with `spin` (other messages pass, so a test can show the next call
//! works). The host must cut the call at its CPU budget and keep serving.

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, export};

struct InfiniteLoop;

impl Plugin for InfiniteLoop {
    fn on_publish(_: &SessionInfo, _: &str, message: Message) -> PublishVerdict {
        if message.payload.starts_with(b"spin") {
            // `black_box` keeps the optimiser from proving anything about
            // the loop (an empty infinite loop could be compiled oddly).
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        PublishVerdict::Accept
    }
}

export!(InfiniteLoop, hooks: [on_publish]);
