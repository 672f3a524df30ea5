use bytes::Bytes;
use quiver_proto::fb::ErrorCode;
use quiver_storage::{ChannelKey, NewMessage, ReadRange};

/// A bidirectional stream carrying requests and their responses. The
/// transport adapter numbers them; lane 0 is the control stream, the first
/// one the client opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneId(pub u64);

impl LaneId {
    pub const CONTROL: LaneId = LaneId(0);
}

/// Id of a subscription within one connection.
pub type SubscriptionId = u32;

/// Something the session needs done. The caller performs it and reports
/// the outcome back through the matching `Session::*_completed` method.
#[derive(Debug)]
pub enum Action {
    /// Write this encoded frame to the lane.
    Send { lane: LaneId, frame: Bytes },
    /// The Hello was accepted: the connection now belongs to this user.
    Authenticated {
        tenant: std::sync::Arc<str>,
        user: std::sync::Arc<str>,
    },
    /// Run the tenant's plugins on this request, then report their verdict
    /// with `hook_completed` before feeding the session anything else.
    Hook(crate::hooks::HookCall),
    /// Start delivering the channel on a new server stream. Report the
    /// channel head with `subscribe_completed`.
    Subscribe {
        lane: LaneId,
        request_id: u64,
        subscription_id: SubscriptionId,
        channel: ChannelKey,
        since: Option<u64>,
    },
    /// Stop delivering and finish the subscription's stream.
    Unsubscribe { subscription_id: SubscriptionId },
    /// Append the message durably, then report with `publish_completed`.
    Publish {
        lane: LaneId,
        request_id: u64,
        message: NewMessage,
    },
    /// Read `range` (its limit is one more than the page, to learn whether
    /// more exist), then report with `history_completed`.
    History {
        lane: LaneId,
        request_id: u64,
        channel: ChannelKey,
        range: ReadRange,
    },
    /// Close the connection with this code after the frames already
    /// queued are flushed. `ErrorCode::None` is a normal close.
    Close { code: ErrorCode, reason: String },
}
