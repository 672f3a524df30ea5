//! Positions on tracking channels. They arrive as QUIC datagrams (or, when
//! the path cannot carry datagrams, on a request stream) and are never
//! answered: a position is superseded by the next one, so a refused or
//! malformed one is dropped and counted, and never closes the connection.

use std::sync::Arc;

use bytes::Bytes;
use quiver_proto::fb::{self, ErrorCode};
use quiver_proto::{Body, PositionRef};
use quiver_storage::Position;

use crate::action::{Action, LaneId, TrackDrop};
use crate::channel::{MAX_ENTITY_BYTES, validate_channel};
use crate::hooks::HookCall;
use crate::rate::TokenBucket;
use crate::session::{Now, Phase, Session};

/// How far ahead of the server's clock a fix's timestamp may be. A fix
/// from the future would shadow every real one after it.
const MAX_CLOCK_AHEAD_MS: u64 = 60_000;

impl Session {
    /// One QUIC datagram from the client. Only `Track` travels this way;
    /// anything else is dropped and counted.
    pub fn handle_datagram(&mut self, datagram: &Bytes, now: Now) {
        if !matches!(self.phase, Phase::Active) {
            return self.drop_track(None, TrackDrop::NotReady, "");
        }
        match quiver_proto::decode(datagram) {
            Ok(Body::Track(track)) => self.handle_track(None, track, now),
            Ok(_) | Err(_) => self.drop_track(None, TrackDrop::Malformed, ""),
        }
    }

    /// A `Track` from a datagram (`lane` is `None`) or from a stream.
    pub(crate) fn handle_track(&mut self, lane: Option<LaneId>, req: fb::Track<'_>, now: Now) {
        if self.phase == Phase::Draining {
            return self.drop_track(lane, TrackDrop::NotReady, "server is shutting down");
        }
        let Some(identity) = self.identity.as_ref() else {
            return self.drop_track(lane, TrackDrop::NotReady, "");
        };
        let Some(channel) = req.channel() else {
            return self.drop_track(lane, TrackDrop::Invalid, "Track.channel is missing");
        };
        if let Err(why) = validate_channel(channel) {
            return self.drop_track(lane, TrackDrop::Invalid, &why);
        }
        if !self.channels.options(channel).is_tracking() {
            let why = format!("{channel:?} is not a tracking channel");
            return self.drop_track(lane, TrackDrop::WrongChannelKind, &why);
        }
        let Some(position) = req.position().map(PositionRef::from_table) else {
            return self.drop_track(lane, TrackDrop::Invalid, "Track.position is missing");
        };
        if let Err(why) = check_position(&position, now.unix_ms) {
            return self.drop_track(lane, TrackDrop::Invalid, &why);
        }
        if !identity.publish.allows(channel) {
            let why = format!("token does not allow you to publish to {channel:?}");
            return self.drop_track(lane, TrackDrop::Forbidden, &why);
        }
        if !identity.track.allows(position.entity) {
            let why = format!(
                "token has no `track` claim for entity {:?}",
                position.entity
            );
            return self.drop_track(lane, TrackDrop::Forbidden, &why);
        }
        let rate = self.limits.track_rate_per_sec;
        let bucket = self
            .track_bucket
            .get_or_insert_with(|| TokenBucket::new(rate, rate, now.instant));
        if bucket.try_take(now.instant).is_err() {
            let why = format!("over the track rate limit of {rate}/s");
            return self.drop_track(lane, TrackDrop::RateLimited, &why);
        }
        let position = Position {
            entity: Arc::from(position.entity),
            lat: position.lat,
            lon: position.lon,
            accuracy: position.accuracy,
            heading: position.heading,
            speed: position.speed,
            // A device without a clock sends 0: the server's time stands in.
            timestamp_ms: match position.timestamp_ms {
                0 => now.unix_ms,
                t => t,
            },
            user: identity.user.clone(),
        };
        let channel = quiver_storage::ChannelKey::new(identity.tenant.clone(), channel);
        self.actions
            .push_back(Action::Hook(HookCall::Track { channel, position }));
    }

    /// Counts a refused position; on a stream, also tells the client why
    /// (not fatally: the next position may well be fine).
    fn drop_track(&mut self, lane: Option<LaneId>, reason: TrackDrop, why: &str) {
        self.actions.push_back(Action::TrackDropped(reason));
        let Some(lane) = lane else {
            return;
        };
        let code = match reason {
            TrackDrop::Malformed => ErrorCode::MalformedFrame,
            TrackDrop::Invalid => ErrorCode::InvalidRequest,
            TrackDrop::Forbidden => ErrorCode::Forbidden,
            TrackDrop::WrongChannelKind => ErrorCode::WrongChannelKind,
            TrackDrop::RateLimited => ErrorCode::RateLimited,
            TrackDrop::Plugin => ErrorCode::Denied,
            TrackDrop::NotReady => ErrorCode::GoingAway,
        };
        let retryable = matches!(reason, TrackDrop::RateLimited | TrackDrop::NotReady);
        self.refuse(lane, 0, code, why.to_owned(), retryable, 0);
    }
}

fn check_position(position: &PositionRef<'_>, now_ms: u64) -> Result<(), String> {
    let entity = position.entity;
    if entity.is_empty() || entity.len() > MAX_ENTITY_BYTES {
        return Err(format!(
            "entity id must be 1 to {MAX_ENTITY_BYTES} bytes, not {}",
            entity.len()
        ));
    }
    if !(-90.0..=90.0).contains(&position.lat) || !(-180.0..=180.0).contains(&position.lon) {
        return Err(format!(
            "lat must be within [-90, 90] and lon within [-180, 180]; got ({}, {})",
            position.lat, position.lon
        ));
    }
    let optional = [
        ("accuracy", position.accuracy),
        ("heading", position.heading),
        ("speed", position.speed),
    ];
    for (name, value) in optional {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(format!("{name} must be a finite, non-negative number"));
        }
    }
    if position.timestamp_ms > now_ms.saturating_add(MAX_CLOCK_AHEAD_MS) {
        return Err(format!(
            "timestamp_ms {} is more than {} s ahead of the server's clock",
            position.timestamp_ms,
            MAX_CLOCK_AHEAD_MS / 1000
        ));
    }
    Ok(())
}
