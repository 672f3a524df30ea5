//! Edit records: which items the edits of a group rewrite, and with what.
//!
//! The channel's owner plans a group's edits under the channel's writer
//! lock, after assigning offsets: an edit's target is either a message of
//! the same group (its row is written with the edited content right away)
//! or an earlier one, read from the database (only the owner writes the
//! channel, and both the writes and this read are at the configured
//! consistency, so the read sees every acked edit). An earlier target is
//! rewritten by an `UPDATE` in the same batch as the edit record (see
//! `group.rs`), at the group's write timestamp, which is above the
//! target's own, so the rewrite wins. Several edits of one target in a group
//! collapse into one rewrite, written with the last of them.
//!
//! The `UPDATE` only ever touches a row the read found: an `UPDATE` of a
//! missing row would create one with no id, and a head probe would take it
//! for a message. It carries the row's remaining TTL (`TTL(id)`), so the
//! rewritten cells expire with the rest of the row.

use std::collections::HashMap;

use futures::future::try_join_all;

use super::Inner;
use super::db::Failure;
use super::log::{bucket, seq, state_of};
use crate::{ChannelKey, EditKind, Header, ItemState, NewMessage, Offset};

/// An item's payload and headers, borrowed from the message that set them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Content<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) headers: &'a [Header],
}

impl<'a> Content<'a> {
    const EMPTY: Content<'static> = Content {
        payload: &[],
        headers: &[],
    };

    pub(crate) fn of(msg: &'a NewMessage) -> Self {
        Self {
            payload: &msg.payload,
            headers: &msg.headers,
        }
    }
}

/// An in-place rewrite of an item written by an earlier group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rewrite<'a> {
    pub(crate) target: Offset,
    pub(crate) content: Content<'a>,
    pub(crate) state: ItemState,
    /// The remaining TTL of the target's row, in seconds (0 = none).
    pub(crate) ttl: i32,
    /// The offset of the edit record this rewrite is written with.
    pub(crate) with: Offset,
}

/// What the edits of one group change.
#[derive(Debug, Default)]
pub(crate) struct EditPlan<'a> {
    /// New content and state of messages of the group itself, by offset.
    pub(crate) overrides: HashMap<Offset, (Content<'a>, ItemState)>,
    /// Rewrites of earlier items, in the order of their edit records.
    pub(crate) rewrites: Vec<Rewrite<'a>>,
}

/// An item as the edits of the group see it.
struct Item<'a> {
    is_edit: bool,
    state: ItemState,
    content: Content<'a>,
    /// `Some` for an item written by an earlier group: its row's TTL.
    stored_ttl: Option<i32>,
    /// The last edit of the group that changed it.
    changed_by: Option<Offset>,
}

/// A target row as read: id, edit_kind, state, TTL(id).
type TargetRow = (Option<Vec<u8>>, Option<i8>, Option<i8>, Option<i32>);

impl Inner {
    /// Plans the edits among `rows`, the group's new messages in offset
    /// order (`head + 1`, `head + 2`, ...). Edits whose target does not
    /// exist, is not lower than the edit, is an edit or is deleted change
    /// nothing.
    pub(crate) async fn plan_edits<'a>(
        &self,
        key: &ChannelKey,
        head: Offset,
        rows: &[(Offset, &'a NewMessage)],
    ) -> Result<EditPlan<'a>, Failure> {
        if rows.iter().all(|(_, m)| m.edit.is_none()) {
            return Ok(EditPlan::default());
        }
        let mut stored: Vec<Offset> = rows
            .iter()
            .filter_map(|(_, m)| m.edit.map(|e| e.target))
            .filter(|t| (1..=head).contains(t))
            .collect();
        stored.sort_unstable();
        stored.dedup();
        let (t, c) = (&*key.tenant, &*key.channel);
        let found = try_join_all(stored.into_iter().map(|target| async move {
            let values = (t, c, bucket(target), seq(target));
            let row: Option<TargetRow> = self.db.row(&self.db.st.edit_target, values).await?;
            Ok::<_, Failure>((target, row))
        }))
        .await?;
        let mut items: HashMap<Offset, Option<Item<'a>>> = HashMap::new();
        for (target, row) in found {
            let item = match row {
                Some((Some(_id), kind, state, ttl)) => Some(Item {
                    is_edit: kind.is_some(),
                    state: state_of(seq(target), state)?,
                    content: Content::EMPTY,
                    stored_ttl: Some(ttl.unwrap_or(0).max(0)),
                    changed_by: None,
                }),
                _ => None,
            };
            items.insert(target, item);
        }

        for &(offset, msg) in rows {
            let Some(edit) = msg.edit else { continue };
            let target = edit.target;
            if target == 0 || target >= offset {
                continue;
            }
            let item = items.entry(target).or_insert_with(|| {
                // Above the head: a message of this group (offsets are
                // contiguous from head + 1).
                let index = usize::try_from(target.checked_sub(head + 1)?).ok()?;
                let (_, m) = rows.get(index)?;
                Some(Item {
                    is_edit: m.edit.is_some(),
                    state: ItemState::Original,
                    content: Content::of(m),
                    stored_ttl: None,
                    changed_by: None,
                })
            });
            let Some(item) = item else { continue };
            if item.is_edit {
                continue;
            }
            let Some(state) = item.state.after(edit.kind) else {
                continue;
            };
            item.state = state;
            item.content = match edit.kind {
                EditKind::Update => Content::of(msg),
                EditKind::Delete => Content::EMPTY,
            };
            item.changed_by = Some(offset);
        }

        let mut plan = EditPlan::default();
        for (target, item) in items {
            let Some(item) = item else { continue };
            let Some(with) = item.changed_by else {
                continue;
            };
            match item.stored_ttl {
                None => {
                    plan.overrides.insert(target, (item.content, item.state));
                }
                Some(ttl) => plan.rewrites.push(Rewrite {
                    target,
                    content: item.content,
                    state: item.state,
                    ttl,
                    with,
                }),
            }
        }
        plan.rewrites.sort_unstable_by_key(|r| r.with);
        Ok(plan)
    }
}
