//! History pages: capped by the limits and cut to fit one frame.

use bytes::Bytes;
use quiver_proto::Body;
use quiver_session::{Action, LaneId, Limits};
use quiver_storage::MessageId;

use crate::harness::Harness;

#[test]
fn history_pages_are_capped_and_report_more() {
    let limits = Limits {
        max_history_page: 50,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    let frame = h.enc.history_request(
        9,
        "room",
        500,
        Some(100),
        None,
        quiver_proto::fb::Direction::Backward,
    );
    let actions = h.feed(0, frame);
    let [Action::History { range, .. }] = actions.as_slice() else {
        panic!()
    };
    assert_eq!(
        (range.limit, range.before, range.after),
        (51, Some(100), None)
    );
}

#[test]
fn history_pages_are_cut_to_fit_one_frame() {
    let limits = Limits {
        max_frame_bytes: 10_000,
        ..Limits::default()
    };
    let mut h = Harness::connected(limits);
    let messages: Vec<_> = (1..=5)
        .map(|offset| quiver_storage::StoredMessage {
            offset,
            id: MessageId(offset.into()),
            timestamp_ms: 0,
            sender: "alice".into(),
            payload: Bytes::from(vec![b'x'; 3_000]),
            headers: vec![],
            edit: None,
            state: quiver_storage::ItemState::Original,
        })
        .collect();
    h.session.history_completed(LaneId(0), 1, 10, Ok(messages));
    let actions = h.drain();
    let Action::Send { frame, .. } = &actions[0] else {
        panic!()
    };
    assert!(frame.len() <= 10_004);
    let Ok(Body::HistoryPage(page)) = quiver_proto::decode(frame) else {
        panic!("no page")
    };
    assert_eq!(page.messages().map(|m| m.len()), Some(3));
    assert!(page.has_more());
}
