//! Edit records: an update or delete is appended like any message and
//! rewrites its target in place, in the same durable write.

use bytes::Bytes;

use super::{append_ok, fresh_tenant, keyed, message, offsets, read_all};
use crate::{ChannelKey, Edit, EditKind, Header, ItemState, MessageLog, NewMessage, StoredMessage};

fn edit(channel: &ChannelKey, target: u64, kind: EditKind, payload: &str) -> NewMessage {
    NewMessage {
        payload: Bytes::from(payload.to_owned()),
        headers: vec![Header {
            name: "edited".into(),
            value: payload.into(),
        }],
        edit: Some(Edit { target, kind }),
        ..message(channel)
    }
}

fn update(channel: &ChannelKey, target: u64, payload: &str) -> NewMessage {
    edit(channel, target, EditKind::Update, payload)
}

fn delete(channel: &ChannelKey, target: u64) -> NewMessage {
    NewMessage {
        payload: Bytes::new(),
        headers: Vec::new(),
        ..edit(channel, target, EditKind::Delete, "")
    }
}

/// The fields an edit must never change.
fn identity(m: &StoredMessage) -> (u64, crate::MessageId, u64, std::sync::Arc<str>) {
    (m.offset, m.id, m.timestamp_ms, m.sender.clone())
}

/// An update is appended at the next offset with its own content, and its
/// target keeps its offset, id, sender and timestamp but now has the
/// update's payload and headers and the state `Updated`; a second update
/// replaces the first. An update of a message of the same batch works too.
pub async fn edit_update_rewrites_target<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("edit-update"), "room");
    append_ok(&store, (0..3).map(|_| message(&channel)).collect()).await;
    let before = read_all(&store, &channel).await;

    let up = update(&channel, 2, "new");
    let out = append_ok(&store, vec![up.clone()]).await[0];
    assert_eq!((out.offset, out.duplicate), (4, false));
    let after = read_all(&store, &channel).await;
    assert_eq!(offsets(&after), vec![1, 2, 3, 4]);
    let target = &after[1];
    assert_eq!(identity(target), identity(&before[1]));
    assert_eq!(target.state, ItemState::Updated);
    assert_eq!(target.edit, None);
    assert_eq!(
        (&target.payload, &target.headers),
        (&up.payload, &up.headers)
    );
    let record = &after[3];
    assert_eq!(record.edit, up.edit, "the edit record carries its edit");
    assert_eq!(record.state, ItemState::Original);
    assert_eq!((record.id, &record.payload), (up.id, &up.payload));
    assert_eq!(after[0], before[0], "other items are untouched");
    assert_eq!(after[2], before[2], "other items are untouched");

    let again = update(&channel, 2, "newer");
    assert_eq!(append_ok(&store, vec![again.clone()]).await[0].offset, 5);
    let target = &read_all(&store, &channel).await[1];
    assert_eq!(
        (target.state, &target.payload),
        (ItemState::Updated, &again.payload)
    );
    assert_eq!(identity(target), identity(&before[1]));

    // The target and its update in one batch (one group write).
    let batch = vec![message(&channel), update(&channel, 6, "same batch")];
    let out = append_ok(&store, batch.clone()).await;
    assert_eq!(out.iter().map(|o| o.offset).collect::<Vec<_>>(), vec![6, 7]);
    let all = read_all(&store, &channel).await;
    assert_eq!(all[5].state, ItemState::Updated);
    assert_eq!(all[5].id, batch[0].id);
    assert_eq!(all[5].payload, batch[1].payload);
    assert_eq!(store.head(&channel).await.ok(), Some(7));
}

/// A delete empties its target's payload and headers and marks it
/// `Deleted`; the delete record is appended at the next offset.
pub async fn edit_delete_empties_target<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("edit-delete"), "room");
    let original = NewMessage {
        headers: vec![Header {
            name: "h".into(),
            value: "v".into(),
        }],
        ..message(&channel)
    };
    append_ok(&store, vec![original.clone(), message(&channel)]).await;
    let out = append_ok(&store, vec![delete(&channel, 1)]).await[0];
    assert_eq!(out.offset, 3);
    let all = read_all(&store, &channel).await;
    assert_eq!(offsets(&all), vec![1, 2, 3]);
    let target = &all[0];
    assert_eq!(target.state, ItemState::Deleted);
    assert!(target.payload.is_empty() && target.headers.is_empty());
    assert_eq!(
        (target.id, target.timestamp_ms, &target.sender),
        (original.id, original.timestamp_ms, &original.sender)
    );
    assert_eq!(
        all[2].edit,
        Some(Edit {
            target: 1,
            kind: EditKind::Delete
        })
    );
    assert_eq!(all[1].state, ItemState::Original);
}

/// An edit whose idempotency key is a duplicate writes nothing: no record
/// and no rewrite.
pub async fn duplicate_edit_writes_nothing<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("edit-dup"), "room");
    append_ok(&store, vec![message(&channel)]).await;
    let first = NewMessage {
        idempotency_key: Some("edit-1".into()),
        ..update(&channel, 1, "first")
    };
    let out = append_ok(&store, vec![first.clone()]).await[0];
    assert_eq!((out.offset, out.duplicate), (2, false));
    for retry in [
        NewMessage {
            idempotency_key: Some("edit-1".into()),
            ..update(&channel, 1, "second")
        },
        NewMessage {
            idempotency_key: Some("edit-1".into()),
            ..delete(&channel, 1)
        },
    ] {
        let again = append_ok(&store, vec![retry]).await[0];
        assert!(again.duplicate);
        assert_eq!((again.offset, again.id), (2, first.id));
    }
    let all = read_all(&store, &channel).await;
    assert_eq!(offsets(&all), vec![1, 2]);
    assert_eq!(
        (all[0].state, &all[0].payload),
        (ItemState::Updated, &first.payload)
    );
    assert_eq!(store.head(&channel).await.ok(), Some(2));
}

/// An edit of an offset that does not exist, of its own or a later offset,
/// or of another edit record is appended and changes nothing in place.
pub async fn edit_of_missing_target_changes_nothing<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("edit-missing"), "room");
    append_ok(&store, vec![message(&channel), keyed(&channel, "k")]).await;
    let before = read_all(&store, &channel).await;
    // Offsets 3..=7: a missing target, offset 0, its own offset, a later
    // offset, and (at 7) an update of the edit record at 3.
    let batch = vec![
        update(&channel, 99, "x"),
        delete(&channel, 0),
        update(&channel, 5, "self"),
        delete(&channel, 9),
        update(&channel, 3, "edit of an edit"),
    ];
    let out = append_ok(&store, batch.clone()).await;
    assert_eq!(
        out.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7]
    );
    // Also in a later write, when the targets are on disk.
    append_ok(
        &store,
        vec![update(&channel, 3, "later"), delete(&channel, 1000)],
    )
    .await;
    let after = read_all(&store, &channel).await;
    assert_eq!(offsets(&after), (1..=9).collect::<Vec<_>>());
    assert_eq!(&after[..2], &before[..], "existing items are untouched");
    for (stored, sent) in after[2..7].iter().zip(&batch) {
        assert_eq!(
            stored.state,
            ItemState::Original,
            "offset {}",
            stored.offset
        );
        assert_eq!((stored.edit, &stored.payload), (sent.edit, &sent.payload));
    }
    assert_eq!(store.head(&channel).await.ok(), Some(9));
}

/// Updating a deleted item leaves it deleted and empty, whether the update
/// comes later or in the same batch as the delete; deleting it again
/// changes nothing either.
pub async fn update_after_delete_stays_deleted<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("edit-after-delete"), "room");
    append_ok(&store, vec![message(&channel), message(&channel)]).await;
    append_ok(&store, vec![delete(&channel, 1)]).await;
    append_ok(&store, vec![update(&channel, 1, "revived?")]).await;
    append_ok(&store, vec![delete(&channel, 1)]).await;
    append_ok(
        &store,
        vec![delete(&channel, 2), update(&channel, 2, "revived?")],
    )
    .await;
    let all = read_all(&store, &channel).await;
    assert_eq!(offsets(&all), (1..=7).collect::<Vec<_>>());
    for target in &all[..2] {
        assert_eq!(target.state, ItemState::Deleted, "offset {}", target.offset);
        assert!(target.payload.is_empty() && target.headers.is_empty());
    }
}

/// An edit in one tenant never touches the same channel name and offset
/// of another tenant.
pub async fn edits_are_tenant_isolated<S: MessageLog>(store: S) {
    let tenant = fresh_tenant("edit-tenants");
    let mine = ChannelKey::new(tenant.as_str(), "room");
    let theirs = ChannelKey::new(format!("{tenant}-other"), "room");
    for channel in [&mine, &theirs] {
        append_ok(&store, vec![message(channel), message(channel)]).await;
    }
    let before = read_all(&store, &theirs).await;
    append_ok(&store, vec![update(&mine, 1, "mine"), delete(&mine, 2)]).await;
    assert_eq!(read_all(&store, &theirs).await, before);
    assert_eq!(store.head(&theirs).await.ok(), Some(2));
    let all = read_all(&store, &mine).await;
    assert_eq!(
        (all[0].state, all[1].state),
        (ItemState::Updated, ItemState::Deleted)
    );
}
