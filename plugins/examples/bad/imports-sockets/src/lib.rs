//! BAD ON PURPOSE: opens a TCP connection, so the component imports
//! `wasi:sockets`. The host must refuse it at upload, naming the import.

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, export};

struct ImportsSockets;

impl Plugin for ImportsSockets {
    fn on_publish(_: &SessionInfo, _: &str, _: Message) -> PublishVerdict {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => PublishVerdict::reject("connected"),
            Err(_) => PublishVerdict::Accept,
        }
    }
}

export!(ImportsSockets, hooks: [on_publish]);
