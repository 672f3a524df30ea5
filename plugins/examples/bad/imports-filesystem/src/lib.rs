//! BAD ON PURPOSE: reads a file, so the component imports
//! `wasi:filesystem`. The host must refuse it at upload, naming the import.

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, export};

struct ImportsFilesystem;

impl Plugin for ImportsFilesystem {
    fn on_publish(_: &SessionInfo, _: &str, _: Message) -> PublishVerdict {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => PublishVerdict::reject(s),
            Err(_) => PublishVerdict::Accept,
        }
    }
}

export!(ImportsFilesystem, hooks: [on_publish]);
