//! BAD ON PURPOSE: when the payload starts with `bomb`, allocates 1 MiB
//! chunks in `on_publish` until memory runs out (other messages pass). The
//! host's memory limit must stop it with a trap.

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, export};

struct MemoryBomb;

impl Plugin for MemoryBomb {
    fn on_publish(_: &SessionInfo, _: &str, message: Message) -> PublishVerdict {
        if !message.payload.starts_with(b"bomb") {
            return PublishVerdict::Accept;
        }
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Filled chunks, kept alive: nothing can be optimised away.
            hoard.push(std::hint::black_box(vec![0xAB; 1 << 20]));
            if std::hint::black_box(hoard.len()) == usize::MAX {
                return PublishVerdict::Accept;
            }
        }
    }
}

export!(MemoryBomb, hooks: [on_publish]);
