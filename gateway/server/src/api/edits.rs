//! `PATCH` and `DELETE` on `/v1/channels/{channel}/messages/{offset}`:
//! backends update or delete feed items. An edit record is appended and the
//! item changes in place, exactly as for clients' `Edit` frames.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::patch;
use bytes::Bytes;
use quiver_storage::{ChannelKey, Edit, EditKind, NewMessage, Offset};
use serde_json::{Value, json};

use super::channels::{
    API_SENDER, ChannelsApi, fresh_id, item_of, new_message, outcome, read_json, store_error,
};
use super::json::{PublishBody, ack_json};
use super::{ApiError, ApiState};
use crate::pipeline::check_edit_target;

pub(super) fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route(
        "/v1/channels/{channel}/messages/{offset}",
        patch(update).delete(delete),
    )
}

/// Replaces an item's payload and headers (body as for a publish).
async fn update(
    State(state): State<ApiState>,
    path: Result<Path<(String, Offset)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let (channel, target) = item_of(path)?;
    api.check_kind(&channel)?;
    let request: PublishBody = read_json(&headers, body, api.max_body_bytes).await?;
    if request.channel.is_some() {
        return Err(ApiError::bad_request(
            "\"channel\" belongs in the path here; it is only a field of batch items",
        ));
    }
    let limits = state.limits_of(&tenant);
    let edit = Edit {
        target,
        kind: EditKind::Update,
    };
    let message = new_message(&tenant, &channel, request, &limits, Some(edit))?;
    api.edit(message, target).await
}

/// Deletes an item: its payload and headers are emptied.
async fn delete(
    State(state): State<ApiState>,
    path: Result<Path<(String, Offset)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let (channel, target) = item_of(path)?;
    api.check_kind(&channel)?;
    let (id, timestamp_ms) = fresh_id();
    let message = NewMessage {
        channel: ChannelKey::new(tenant, channel.as_str()),
        id,
        timestamp_ms,
        sender: Arc::from(API_SENDER),
        payload: Bytes::new(),
        headers: Vec::new(),
        idempotency_key: None,
        edit: Some(Edit {
            target,
            kind: EditKind::Delete,
        }),
    };
    api.edit(message, target).await
}

impl ChannelsApi {
    /// Checks an edit's target, then appends the edit like a publish.
    async fn edit(&self, message: NewMessage, target: Offset) -> Result<Json<Value>, ApiError> {
        let found = check_edit_target(&*self.store, &message.channel, target)
            .await
            .map_err(store_error)?;
        if !found {
            return Err(ApiError::not_found(format!(
                "offset {target} holds no item that can be edited (never written, an edit itself, or deleted)"
            )));
        }
        let channel = message.channel.channel.clone();
        let pipeline = self.running()?;
        let appended = outcome(pipeline.submit(message).await).await?;
        let mut ack = ack_json(&channel, &appended);
        ack["target"] = json!(target);
        Ok(Json(ack))
    }
}
