//! BAD ON PURPOSE: panics (a wasm trap) in every hook it lists. The host
//! must recycle the instance, apply the failure policy and carry on.

use quiver_plugin_sdk::{
    Admission, Message, Plugin, Position, PublishVerdict, SessionInfo, TrackVerdict, export,
};

struct AlwaysTrap;

impl Plugin for AlwaysTrap {
    fn on_connect(_: &SessionInfo, _: &str) -> Admission {
        panic!("always-trap: on_connect")
    }
    fn on_subscribe(_: &SessionInfo, _: &str) -> Admission {
        panic!("always-trap: on_subscribe")
    }
    fn on_publish(_: &SessionInfo, _: &str, _: Message) -> PublishVerdict {
        panic!("always-trap: on_publish")
    }
    fn on_track(_: &SessionInfo, _: &str, position: &Position) -> TrackVerdict {
        panic!("always-trap: on_track of {}", position.entity)
    }
}

export!(AlwaysTrap, hooks: [on_connect, on_subscribe, on_publish, on_track]);
