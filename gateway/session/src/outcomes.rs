//! Outcomes of the actions the runtime performed, and the frames and
//! closes they lead to.

use quiver_proto::MessageMeta;
use quiver_proto::fb::{self, ErrorCode};
use quiver_storage::{Appended, Edit, EditKind, ItemState, StoreError, StoredMessage};

use crate::action::{Action, LaneId, SubscriptionId};
use crate::session::{Phase, Session};

/// Bytes a HistoryPage frame needs besides its messages (prefix, root
/// table, vector), rounded up.
const PAGE_OVERHEAD: usize = 64;

/// An upper bound of the bytes one message adds to a page: its variable
/// fields plus the table, vtable, id and alignment around them.
fn encoded_size_estimate(message: &StoredMessage) -> usize {
    let headers: usize = message
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 32)
        .sum();
    message.payload.len() + message.sender.len() + headers + 96
}

/// The wire form of a stored message's kind and state.
pub fn message_meta(edit: Option<Edit>, state: ItemState) -> MessageMeta {
    let (kind, target) = match edit {
        None => (fb::MessageKind::Item, 0),
        Some(Edit {
            target,
            kind: EditKind::Update,
        }) => (fb::MessageKind::Update, target),
        Some(Edit {
            target,
            kind: EditKind::Delete,
        }) => (fb::MessageKind::Delete, target),
    };
    let state = match state {
        ItemState::Original => fb::ItemState::Original,
        ItemState::Updated => fb::ItemState::Updated,
        ItemState::Deleted => fb::ItemState::Deleted,
    };
    MessageMeta {
        kind,
        target,
        state,
    }
}

impl Session {
    /// The subscription's delivery is set up; `head` is the channel's last
    /// offset at that moment.
    pub fn subscribe_completed(
        &mut self,
        lane: LaneId,
        request_id: u64,
        subscription_id: SubscriptionId,
        result: Result<u64, StoreError>,
    ) {
        let Some(channel) = self.by_id.get(&subscription_id).cloned() else {
            // Unsubscribed while being set up: nothing left to confirm.
            return;
        };
        match result {
            Ok(head) => {
                let frame = self
                    .encoder
                    .subscribed(request_id, subscription_id, &channel, head);
                self.send(lane, frame);
            }
            Err(error) => {
                self.remove_subscription(subscription_id);
                self.actions
                    .push_back(Action::Unsubscribe { subscription_id });
                self.refuse_store(lane, request_id, &error);
            }
        }
    }

    pub fn publish_completed(
        &mut self,
        lane: LaneId,
        request_id: u64,
        result: Result<Appended, StoreError>,
    ) {
        match result {
            Ok(appended) => {
                let frame = self.encoder.publish_ack(
                    request_id,
                    appended.offset,
                    appended.id.0,
                    appended.duplicate,
                );
                self.send(lane, frame);
            }
            Err(error) => self.refuse_store(lane, request_id, &error),
        }
    }

    /// The target of an edit is not an editable item of the channel.
    pub fn edit_target_missing(&mut self, lane: LaneId, request_id: u64, target: u64) {
        let message = format!(
            "offset {target} holds no item that can be edited (never written, an edit itself, or deleted)"
        );
        self.refuse(lane, request_id, ErrorCode::NotFound, message, false, 0);
    }

    /// `messages` were read with the limit of the History action, which is
    /// one more than the page size.
    pub fn history_completed(
        &mut self,
        lane: LaneId,
        request_id: u64,
        page_limit: usize,
        result: Result<Vec<StoredMessage>, StoreError>,
    ) {
        match result {
            Ok(mut messages) => {
                let mut has_more = messages.len() > page_limit;
                messages.truncate(page_limit);
                // Keep the page within one frame: cut it short and say
                // there is more, rather than send a frame the client must
                // refuse.
                let budget = self.limits.max_frame_bytes as usize;
                let mut size = PAGE_OVERHEAD;
                if let Some(fit) = messages.iter().position(|m| {
                    size += encoded_size_estimate(m);
                    size > budget
                }) {
                    messages.truncate(fit.max(1));
                    has_more = true;
                }
                let page = messages.iter().map(|m| quiver_proto::MessageRef {
                    offset: m.offset,
                    id: m.id.0,
                    sender: &m.sender,
                    timestamp_ms: m.timestamp_ms,
                    payload: &m.payload,
                    headers: m
                        .headers
                        .iter()
                        .map(|h| (h.name.as_str(), h.value.as_str())),
                    meta: message_meta(m.edit, m.state),
                });
                let frame = self.encoder.history_page(request_id, page, has_more);
                self.send(lane, frame);
            }
            Err(error) => self.refuse_store(lane, request_id, &error),
        }
    }

    /// A subscription's delivery fell too far behind: the connection is
    /// closed so its memory stays bounded; the client resumes with `since`.
    pub fn slow_consumer(&mut self, subscription_id: SubscriptionId) {
        let channel = self
            .by_id
            .get(&subscription_id)
            .map_or_else(String::new, |c| format!(" on {:?}", &**c));
        self.fail(
            ErrorCode::SlowConsumer,
            format!("connection fell behind{channel}; reconnect and resubscribe with since"),
        );
    }

    /// The server is shutting down: tell the client to reconnect elsewhere
    /// and refuse new requests from now on.
    pub fn go_away(&mut self, reconnect_after_ms: u32) {
        if matches!(self.phase, Phase::Closed | Phase::Draining) {
            return;
        }
        if self.phase == Phase::AwaitingHello {
            return self.fail(ErrorCode::GoingAway, "server is shutting down".into());
        }
        self.phase = Phase::Draining;
        let frame = self.encoder.go_away(
            ErrorCode::GoingAway,
            "server is shutting down; reconnect and resume with since",
            reconnect_after_ms,
        );
        self.send(LaneId::CONTROL, frame);
    }

    fn refuse_store(&mut self, lane: LaneId, request_id: u64, error: &StoreError) {
        let (code, retryable, retry_after_ms) = match error {
            StoreError::Unavailable { retry_after, .. } => (
                ErrorCode::StoreUnavailable,
                true,
                u32::try_from(retry_after.as_millis()).unwrap_or(u32::MAX),
            ),
            StoreError::Closed => (ErrorCode::StoreUnavailable, true, 1000),
            _ => (ErrorCode::Internal, false, 0),
        };
        self.refuse(
            lane,
            request_id,
            code,
            error.to_string(),
            retryable,
            retry_after_ms,
        );
    }

    /// Refuses one request; the connection stays open.
    pub(crate) fn refuse(
        &mut self,
        lane: LaneId,
        request_id: u64,
        code: ErrorCode,
        message: String,
        retryable: bool,
        retry_after_ms: u32,
    ) {
        let frame =
            self.encoder
                .error(request_id, code, &message, retryable, false, retry_after_ms);
        self.send(lane, frame);
    }

    /// Ends the connection: a fatal Error on the control stream, then a
    /// close with the same code.
    pub(crate) fn fail(&mut self, code: ErrorCode, message: String) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        let frame = self.encoder.error(0, code, &message, false, true, 0);
        self.send(LaneId::CONTROL, frame);
        self.actions.push_back(Action::Close {
            code,
            reason: message,
        });
    }

    pub(crate) fn send(&mut self, lane: LaneId, frame: bytes::Bytes) {
        self.actions.push_back(Action::Send { lane, frame });
    }
}

impl Session {
    /// The subscription's stream went away without an Unsubscribe (the
    /// client stopped reading it): forget it so its slot is free again.
    pub fn subscription_ended(&mut self, subscription_id: SubscriptionId) {
        self.remove_subscription(subscription_id);
    }
}
