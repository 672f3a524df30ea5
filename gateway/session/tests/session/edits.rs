//! Edits: validated, then appended with their target.

use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, LaneId, Limits};

use crate::harness::{Harness, NO_HEADERS, error_of};

#[test]
fn edits_are_validated_then_become_appends_with_their_target() {
    let mut h = Harness::connected(Limits::default());
    let update = h
        .enc
        .edit(3, "feed", 5, false, b"v2", [("rev", "2")], Some("k"));
    let actions = h.feed(1, update);
    let [Action::Publish { message, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    let edit = message.edit.expect("an edit");
    assert_eq!(
        (edit.target, edit.kind),
        (5, quiver_storage::EditKind::Update)
    );
    assert_eq!(&message.payload[..], b"v2");

    let delete = h.enc.edit(4, "feed", 5, true, b"", NO_HEADERS, None);
    let actions = h.feed(1, delete);
    let [Action::Publish { message, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(
        message.edit.map(|e| e.kind),
        Some(quiver_storage::EditKind::Delete)
    );

    // A delete with content, and target 0, are invalid.
    let bad = h.enc.edit(5, "feed", 5, true, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, bad)),
        (ErrorCode::InvalidRequest, false)
    );
    let zero = h.enc.edit(6, "feed", 0, false, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, zero)),
        (ErrorCode::InvalidRequest, false)
    );
    // A tracking channel takes no edits.
    let track = h
        .enc
        .edit(7, "track:city", 1, false, b"x", NO_HEADERS, None);
    assert_eq!(
        error_of(&h.feed(1, track)),
        (ErrorCode::WrongChannelKind, false)
    );
    // The runtime found no item at the target.
    h.session.edit_target_missing(LaneId(1), 3, 5);
    assert_eq!(error_of(&h.drain()), (ErrorCode::NotFound, false));
}
