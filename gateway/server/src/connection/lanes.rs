//! Which request lanes owe answers, so a lane the client finished is
//! finished on the server's side right after its last response.

use std::collections::HashMap;

use quiver_session::LaneId;

/// Requests still unanswered per lane, so a lane the client finished is
/// finished on the server's side right after its last response.
#[derive(Default)]
pub(super) struct LaneLedger {
    in_flight: HashMap<LaneId, usize>,
    finished: Vec<LaneId>,
}

impl LaneLedger {
    pub(super) fn started(&mut self, lane: LaneId) {
        // The control lane lives as long as the connection: no bookkeeping
        // on the common path.
        if lane == LaneId::CONTROL {
            return;
        }
        *self.in_flight.entry(lane).or_default() += 1;
    }

    /// Records an answered request; true when the lane can now be finished.
    pub(super) fn answered(&mut self, lane: LaneId) -> bool {
        if let Some(count) = self.in_flight.get_mut(&lane) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(&lane);
                return self.take_finished(lane);
            }
        }
        false
    }

    /// Records that the client finished the lane; true when nothing is owed.
    pub(super) fn client_finished(&mut self, lane: LaneId) -> bool {
        if self.in_flight.contains_key(&lane) {
            self.finished.push(lane);
            false
        } else {
            true
        }
    }

    fn take_finished(&mut self, lane: LaneId) -> bool {
        let before = self.finished.len();
        self.finished.retain(|l| *l != lane);
        self.finished.len() != before
    }
}
