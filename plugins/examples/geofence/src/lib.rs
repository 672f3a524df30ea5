//! Publishes an alert when a tracked entity enters or leaves a polygon (a
//! geofence), for instance a courier arriving at or leaving the depot.
//!
//! Config (the JSON object given at upload):
//!
//! ```json
//! { "polygon": [[51.500, -0.130], [51.500, -0.110], [51.520, -0.110], [51.520, -0.130]],
//!   "alert_channel": "alerts:depot",
//!   "name": "depot" }
//! ```
//!
//! `polygon` is at least 3 `[lat, lon]` vertices in WGS 84 degrees (closing
//! the ring by repeating the first vertex is allowed, not needed); `name`
//! is optional and defaults to `"geofence"`.
//!
//! For each position the plugin works out whether the entity is inside and
//! compares that with the entity's last known side, kept in the plugin's
//! key-value store per (tracking channel, entity). When the side changes
//! it answers `alert` on `alert_channel` with
//!
//! ```json
//! {"fence":"depot","entity":"courier-7","event":"enter","lat":51.51,"lon":-0.12,"timestamp_ms":1700000000000}
//! ```
//!
//! (`event` is `enter` or `leave`; `lat`, `lon` and `timestamp_ms` are the
//! position's) and adds 1 to the counter `geofence_alerts`. Repeated
//! positions on the same side alert nothing: one alert per crossing.
//!
//! Choices worth knowing:
//!
//! - **First sighting.** An entity seen for the first time alerts `enter`
//!   if it is inside, and is silently recorded as outside otherwise: a
//!   courier who turns up inside the depot is news, the rest of the fleet
//!   appearing somewhere else in town is not.
//! - **Forgetting.** The side expires 24 hours after it was last stored
//!   (refreshed at least hourly while positions keep coming), so abandoned
//!   entities do not accumulate; an entity back after a longer silence is
//!   a first sighting again.
//! - **Bad config** (missing or short polygon, non-numeric or out-of-range
//!   coordinates, no `alert_channel`) never traps: the plugin logs one
//!   error per instance and accepts every position without alerting.
//! - **Store errors** fail open: the position is accepted without an alert
//!   (and a warning logged); the crossing is reported on the next position
//!   that reaches the store, late rather than twice.
//! - Positions of one entity are expected in order, one at a time (they
//!   come from one device). Two handled at the same instant on two nodes
//!   may both see the old side, and the crossing would alert twice.

use std::sync::OnceLock;
use std::time::Duration;

use quiver_plugin_sdk::{
    Alert, Plugin, Position, SessionInfo, TrackVerdict, clock, config, export, kv, log, metrics,
};

use geofence_core::{Fence, Side};

/// How long an entity's side is remembered after it was last stored.
const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How often an unchanged side is stored again to push its expiry back.
/// Storing on every position would cost a store write per fix (often one
/// a second per entity); this costs one an hour, plus one per crossing.
const REFRESH_MS: u64 = 60 * 60 * 1000;

struct Geofence;

/// The parsed config, or `None` when it is unusable. Parsed once per
/// instance: a new config is a new upload, hence new instances. This is
/// also what makes the error log line appear once rather than per position.
fn fence() -> Option<&'static Fence> {
    static FENCE: OnceLock<Option<Fence>> = OnceLock::new();
    FENCE
        .get_or_init(|| {
            let parsed = Fence::from_config(
                config::get("polygon").as_deref(),
                config::get("alert_channel").as_deref(),
                config::get("name").as_deref(),
            );
            parsed
                .inspect_err(|e| {
                    log::error(
                        "geofence config is invalid; accepting every position without alerts",
                        &[("error", e)],
                    );
                })
                .ok()
        })
        .as_ref()
}

impl Plugin for Geofence {
    fn on_track(_: &SessionInfo, channel: &str, position: &Position) -> TrackVerdict {
        let Some(fence) = fence() else {
            return TrackVerdict::Accept;
        };
        // A fix without usable coordinates says nothing about the fence;
        // leave the remembered side as it is.
        if !(position.lat.is_finite() && position.lon.is_finite()) {
            return TrackVerdict::Accept;
        }
        let inside = fence.contains(position.lat, position.lon);
        let key = geofence_core::state_key(channel, &position.entity);

        let previous = match kv::get(&key) {
            // An unreadable value (not written by this plugin) counts as
            // never seen, rather than failing every position of the entity.
            Ok(value) => value.as_deref().and_then(Side::decode),
            Err(e) => {
                log::warn(
                    "geofence store error; accepting the position unchecked",
                    &[("error", &e)],
                );
                return TrackVerdict::Accept;
            }
        };
        let event = geofence_core::crossing(previous.map(|s| s.inside), inside);

        let now = clock::now_ms();
        let must_store = previous
            .is_none_or(|s| s.inside != inside || now.saturating_sub(s.stored_ms) >= REFRESH_MS);
        if must_store {
            let side = Side {
                inside,
                stored_ms: now,
            };
            if let Err(e) = kv::set(&key, side.encode(), Some(TTL)) {
                // Without the new side stored, alerting now would alert
                // again on the next position: report the crossing later
                // (when a store succeeds) instead of twice.
                log::warn(
                    "geofence store error; accepting the position unchecked",
                    &[("error", &e)],
                );
                return TrackVerdict::Accept;
            }
        }

        match event {
            None => TrackVerdict::Accept,
            Some(event) => {
                metrics::counter_add("geofence_alerts", 1);
                TrackVerdict::Alert(Alert {
                    channel: fence.alert_channel.clone(),
                    payload: fence.alert_payload(event, position),
                })
            }
        }
    }
}

export!(Geofence, hooks: [on_track]);

/// The geometry, the config and the state encoding, free of host calls so
/// they read (and test) alone.
mod geofence_core {
    use quiver_plugin_sdk::Position;
    use serde::Serialize;

    /// A crossing of the fence.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Event {
        Enter,
        Leave,
    }

    /// A usable config.
    #[derive(Debug)]
    pub(crate) struct Fence {
        /// `[lat, lon]` vertices, the ring not closed.
        pub(crate) polygon: Vec<[f64; 2]>,
        pub(crate) alert_channel: String,
        pub(crate) name: String,
    }

    impl Fence {
        /// The fence from the config values (as `config::get` gives them:
        /// the polygon as JSON text), or what is wrong with them.
        pub(crate) fn from_config(
            polygon: Option<&str>,
            alert_channel: Option<&str>,
            name: Option<&str>,
        ) -> Result<Fence, String> {
            let polygon = polygon.ok_or("`polygon` is missing")?;
            let mut polygon: Vec<[f64; 2]> = serde_json::from_str(polygon)
                .map_err(|e| format!("`polygon` must be an array of [lat, lon] numbers: {e}"))?;
            // A closed ring repeats its first vertex; that is not a vertex
            // more (and would let a 2-point "polygon" pass the check below).
            if polygon.len() > 1 && polygon.first() == polygon.last() {
                polygon.pop();
            }
            if polygon.len() < 3 {
                return Err(format!(
                    "`polygon` has {} vertices; a fence needs at least 3",
                    polygon.len()
                ));
            }
            if let Some([lat, lon]) = polygon.iter().find(|[lat, lon]| {
                !((-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon))
            }) {
                return Err(format!(
                    "`polygon` vertex [{lat}, {lon}] is not WGS 84 degrees"
                ));
            }
            let alert_channel = match alert_channel {
                Some(c) if !c.is_empty() => c.to_owned(),
                _ => return Err("`alert_channel` is missing or empty".into()),
            };
            let name = name.filter(|n| !n.is_empty()).unwrap_or("geofence");
            Ok(Fence {
                polygon,
                alert_channel,
                name: name.to_owned(),
            })
        }

        /// Whether (`lat`, `lon`) is inside, by ray casting (even-odd
        /// rule): count the polygon's edges crossed by a ray going east
        /// from the point; odd means inside. Works for concave polygons.
        ///
        /// It treats lat/lon as flat x/y, which is fine for city-sized
        /// fences: the edges are then rhumb lines rather than great
        /// circles, a difference of centimetres at that scale. It is wrong
        /// for fences spanning the antimeridian (±180°) or a pole.
        pub(crate) fn contains(&self, lat: f64, lon: f64) -> bool {
            let next = self.polygon.iter().cycle().skip(1);
            let mut inside = false;
            for (&[lat_a, lon_a], &[lat_b, lon_b]) in self.polygon.iter().zip(next) {
                // Only edges with one end strictly north of the point and
                // the other not can meet the eastward ray; this also skips
                // horizontal edges, so the division below is never by 0.
                if (lat_a > lat) != (lat_b > lat) {
                    let lon_at = lon_a + (lat - lat_a) / (lat_b - lat_a) * (lon_b - lon_a);
                    if lon < lon_at {
                        inside = !inside;
                    }
                }
            }
            inside
        }

        /// The alert's JSON.
        pub(crate) fn alert_payload(&self, event: Event, position: &Position) -> Vec<u8> {
            #[derive(Serialize)]
            struct Payload<'a> {
                fence: &'a str,
                entity: &'a str,
                event: &'static str,
                lat: f64,
                lon: f64,
                timestamp_ms: u64,
            }
            let payload = Payload {
                fence: &self.name,
                entity: &position.entity,
                event: match event {
                    Event::Enter => "enter",
                    Event::Leave => "leave",
                },
                lat: position.lat,
                lon: position.lon,
                timestamp_ms: position.timestamp_ms,
            };
            // Cannot fail: plain fields, and the coordinates are finite.
            serde_json::to_vec(&payload).unwrap_or_default()
        }
    }

    /// What happened, given the remembered side (`None`: never seen) and
    /// the current one.
    pub(crate) fn crossing(previous: Option<bool>, inside: bool) -> Option<Event> {
        match (previous, inside) {
            (Some(false) | None, true) => Some(Event::Enter),
            (Some(true), false) => Some(Event::Leave),
            // Same side, or a first sighting outside.
            _ => None,
        }
    }

    /// The store key of an entity on a tracking channel. The channel's
    /// length goes first so that no (channel, entity) pair can spell
    /// another's key ("a:b" + "c" vs "a" + "b:c").
    pub(crate) fn state_key(channel: &str, entity: &str) -> String {
        format!("side:{}:{channel}:{entity}", channel.len())
    }

    /// An entity's remembered side, and when it was stored (host clock).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Side {
        pub(crate) inside: bool,
        pub(crate) stored_ms: u64,
    }

    impl Side {
        /// `in:<ms>` or `out:<ms>`: readable when an operator looks.
        pub(crate) fn encode(self) -> String {
            let side = if self.inside { "in" } else { "out" };
            format!("{side}:{}", self.stored_ms)
        }

        pub(crate) fn decode(value: &[u8]) -> Option<Side> {
            let (side, ms) = std::str::from_utf8(value).ok()?.split_once(':')?;
            let inside = match side {
                "in" => true,
                "out" => false,
                _ => return None,
            };
            Some(Side {
                inside,
                stored_ms: ms.parse().ok()?,
            })
        }
    }
}

// Pure logic tests run natively: `cargo test -p geofence --manifest-path
// plugins/examples/Cargo.toml` (no wasm target needed).
#[cfg(test)]
mod tests {
    use super::geofence_core::{Event, Fence, Side, crossing, state_key};
    use quiver_plugin_sdk::Position;

    fn fence(polygon: &str) -> Fence {
        Fence::from_config(Some(polygon), Some("alerts"), None).unwrap()
    }

    #[test]
    fn contains_follows_the_even_odd_rule_on_a_concave_polygon() {
        // An L: the square 0..2 x 0..2 without its north-east quarter.
        let l = fence("[[0,0],[0,2],[1,2],[1,1],[2,1],[2,0]]");
        assert!(l.contains(0.5, 0.5));
        assert!(l.contains(0.5, 1.5));
        assert!(l.contains(1.5, 0.5));
        assert!(!l.contains(1.5, 1.5), "the notch is outside");
        assert!(!l.contains(-0.5, 0.5));
        assert!(!l.contains(0.5, 2.5));
        assert!(!l.contains(3.0, 3.0));
    }

    #[test]
    fn contains_works_west_and_south_of_greenwich_and_the_equator() {
        let f = fence("[[-1,-1],[-1,1],[1,1],[1,-1],[-1,-1]]");
        assert!(f.contains(0.0, 0.0));
        assert!(f.contains(-0.9, -0.9));
        assert!(!f.contains(-1.1, 0.0));
        assert_eq!(f.polygon.len(), 4, "the closing vertex is dropped");
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let bad = |polygon: Option<&str>, channel: Option<&str>| {
            Fence::from_config(polygon, channel, None).unwrap_err()
        };
        let ch = Some("alerts");
        assert!(bad(None, ch).contains("missing"));
        assert!(bad(Some("[[0,0],[1,1]]"), ch).contains("at least 3"));
        assert!(bad(Some("[[0,0],[1,1],[0,0]]"), ch).contains("at least 3"));
        assert!(bad(Some(r#"[["a","b"],[1,1],[2,2]]"#), ch).contains("numbers"));
        assert!(bad(Some("[[0,0,0],[1,1],[2,2]]"), ch).contains("numbers"));
        assert!(bad(Some("not json"), ch).contains("numbers"));
        assert!(bad(Some("[[0,0],[1,1],[91,2]]"), ch).contains("WGS 84"));
        assert!(bad(Some("[[0,0],[0,1],[1,1]]"), None).contains("alert_channel"));
        assert!(bad(Some("[[0,0],[0,1],[1,1]]"), Some("")).contains("alert_channel"));
    }

    #[test]
    fn one_event_per_crossing_and_none_for_a_first_sighting_outside() {
        assert_eq!(crossing(None, false), None);
        assert_eq!(crossing(None, true), Some(Event::Enter));
        assert_eq!(crossing(Some(false), true), Some(Event::Enter));
        assert_eq!(crossing(Some(true), false), Some(Event::Leave));
        assert_eq!(crossing(Some(true), true), None);
        assert_eq!(crossing(Some(false), false), None);
    }

    #[test]
    fn payload_is_json_with_the_entity_escaped() {
        let f = Fence::from_config(Some("[[0,0],[0,1],[1,1]]"), Some("a"), Some("depot")).unwrap();
        let position = Position {
            entity: "van \"7\"".into(),
            lat: 51.5,
            lon: -0.12,
            accuracy: None,
            heading: None,
            speed: None,
            timestamp_ms: 1_700_000_000_000,
        };
        let json = String::from_utf8(f.alert_payload(Event::Leave, &position)).unwrap();
        assert_eq!(
            json,
            r#"{"fence":"depot","entity":"van \"7\"","event":"leave","lat":51.5,"lon":-0.12,"timestamp_ms":1700000000000}"#
        );
    }

    #[test]
    fn keys_are_unambiguous_and_sides_round_trip() {
        assert_ne!(state_key("a:b", "c"), state_key("a", "b:c"));
        for side in [
            Side {
                inside: true,
                stored_ms: 5,
            },
            Side {
                inside: false,
                stored_ms: u64::MAX,
            },
        ] {
            assert_eq!(Side::decode(side.encode().as_bytes()), Some(side));
        }
        assert_eq!(Side::decode(b"maybe:1"), None);
        assert_eq!(Side::decode(b"in"), None);
    }
}
