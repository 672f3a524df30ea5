use bytes::Bytes;
use quiver_proto::fb::ErrorCode;
use quiver_storage::{ChannelKey, NewMessage, Position, ReadRange};

use crate::channel::ChannelOptions;

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

/// Where a message subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// Live from the channel's head.
    Head,
    /// Replay every message after this offset first.
    After(u64),
    /// Replay the latest this many messages first.
    Last(u32),
}

/// Why a position was not accepted, for the tracking metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackDrop {
    /// Not a valid frame, or not a Track frame.
    Malformed,
    /// Values out of range (latitude, entity id, ...).
    Invalid,
    /// The token does not allow the channel or the entity.
    Forbidden,
    /// Not a tracking channel.
    WrongChannelKind,
    /// Over the connection's track rate.
    RateLimited,
    /// A tenant plugin dropped or refused it.
    Plugin,
    /// Before the session was open, or while it shuts down.
    NotReady,
}

impl TrackDrop {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            TrackDrop::Malformed => "malformed",
            TrackDrop::Invalid => "invalid",
            TrackDrop::Forbidden => "forbidden",
            TrackDrop::WrongChannelKind => "wrong_channel_kind",
            TrackDrop::RateLimited => "rate_limited",
            TrackDrop::Plugin => "plugin",
            TrackDrop::NotReady => "not_ready",
        }
    }
}

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
        start: StartAt,
        options: ChannelOptions,
        /// Tracking: the most positions per entity per second to send.
        max_rate: u32,
    },
    /// Stop delivering and finish the subscription's stream.
    Unsubscribe { subscription_id: SubscriptionId },
    /// Append the message durably, then report with `publish_completed`.
    /// An edit (`message.edit` set) first needs its target checked: report
    /// a missing one with `edit_target_missing`.
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
    /// Take this position as the entity's newest on the tracking channel.
    Track {
        channel: ChannelKey,
        position: Position,
    },
    /// A position was not accepted; count it.
    TrackDropped(TrackDrop),
    /// Publish a message a plugin raised (a geofence alert). Nobody waits
    /// for its ack.
    Alert { message: NewMessage },
    /// Close the connection with this code after the frames already
    /// queued are flushed. `ErrorCode::None` is a normal close.
    Close { code: ErrorCode, reason: String },
}
