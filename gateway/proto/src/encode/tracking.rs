//! Live tracking frames: Track (client -> server, usually one QUIC
//! datagram) and Positions (server -> client).

use bytes::Bytes;
use flatbuffers::WIPOffset;

use super::Encoder;
use crate::fb;

/// A position to encode, or one read from a frame, borrowing its strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionRef<'a> {
    pub entity: &'a str,
    /// WGS 84 degrees.
    pub lat: f64,
    pub lon: f64,
    /// Metres.
    pub accuracy: Option<f64>,
    /// Degrees clockwise from north.
    pub heading: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// When the device took the fix, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Who reported it; set by the server on delivery, absent in Track.
    pub user: Option<&'a str>,
}

impl<'a> PositionRef<'a> {
    /// The fields of a received `Position` table.
    pub fn from_table(position: fb::Position<'a>) -> Self {
        Self {
            entity: position.entity(),
            lat: position.lat(),
            lon: position.lon(),
            accuracy: position.accuracy(),
            heading: position.heading(),
            speed: position.speed(),
            timestamp_ms: position.timestamp_ms(),
            user: position.user(),
        }
    }

    /// Bytes this position adds to a Positions frame, as an upper bound, so
    /// a sender can pack datagrams without encoding twice.
    pub fn encoded_len_bound(&self) -> usize {
        // Table with vtable, five doubles, a ulong, two string offsets and
        // two length-prefixed, NUL-terminated, padded strings.
        const FIXED: usize = 4 + 4 + 2 * 10 + 6 * 8 + 2 * 4 + 2 * (4 + 1 + 3) + 4;
        FIXED + self.entity.len() + self.user.map_or(0, str::len)
    }
}

impl Encoder {
    /// `Track`: report `position` on the tracking channel `channel`.
    pub fn track(&mut self, channel: &str, position: &PositionRef<'_>) -> Bytes {
        let channel = self.fbb.create_string(channel);
        let position = self.create_position(position);
        let body = fb::Track::create(
            &mut self.fbb,
            &fb::TrackArgs {
                channel: Some(channel),
                position: Some(position),
            },
        );
        self.finish(fb::Body::Track, body.as_union_value())
    }

    /// `Positions`: the newest positions of subscription `subscription_id`.
    /// Positions are taken by value, so a sender can map its own type into
    /// them without collecting them first.
    pub fn positions<'p>(
        &mut self,
        subscription_id: u32,
        positions: impl IntoIterator<Item = PositionRef<'p>>,
        snapshot: bool,
    ) -> Bytes {
        let mut scratch = std::mem::take(&mut self.position_scratch);
        scratch.clear();
        for position in positions {
            scratch.push(self.create_position(&position));
        }
        let positions = self.fbb.create_vector(&scratch);
        self.position_scratch = scratch;
        let body = fb::Positions::create(
            &mut self.fbb,
            &fb::PositionsArgs {
                subscription_id,
                positions: Some(positions),
                snapshot,
            },
        );
        self.finish(fb::Body::Positions, body.as_union_value())
    }

    fn create_position(&mut self, position: &PositionRef<'_>) -> WIPOffset<fb::Position<'static>> {
        let entity = self.fbb.create_string(position.entity);
        let user = position.user.map(|user| self.fbb.create_string(user));
        fb::Position::create(
            &mut self.fbb,
            &fb::PositionArgs {
                entity: Some(entity),
                lat: position.lat,
                lon: position.lon,
                accuracy: position.accuracy,
                heading: position.heading,
                speed: position.speed,
                timestamp_ms: position.timestamp_ms,
                user,
            },
        )
    }
}
