//! The server-side publish API: backends publish into their tenant's
//! channels and read history, authenticated by a tenant API key.
//! docs/openapi.yaml is the reference.
//!
//! Publishes take the same pipeline as clients' (durable before the
//! response, then fanned out live). Tenant plugins' publish hooks do not
//! run on them: a backend holding the tenant's API key is the tenant, so
//! there is no user to admit or filter, just as for messages plugins
//! publish themselves. The sender is `"api"`.
//!
//! Edits of items (`edits`), presence (`presence`) and positions
//! (`positions`) are routes of the same API in files of their own; they
//! share this file's state and helpers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use quiver_session::channel::validate_channel;
use quiver_session::{ChannelRules, Limits};
use quiver_storage::{
    Appended, ChannelKey, Direction, Edit, MessageId, MessageLog, NewMessage, Offset, ReadRange,
    StoreError,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Invalid, PublishBody, ack_json, message_json};
use super::{ApiError, ApiKeys, ApiState};
use crate::pipeline::PublishReceipt;
use crate::plugins::PluginPublisher;
use crate::presence::Presence;

/// The `sender` of every message published through this API.
pub const API_SENDER: &str = "api";
/// History page size when the request gives no `limit`.
const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// What the publish API needs beside the shared [`ApiState`].
#[derive(Clone)]
pub struct ChannelsApi {
    /// Which tenant each key belongs to.
    pub keys: Arc<ApiKeys>,
    /// The running gateway's publish pipeline, late-bound: the same slot
    /// plugins publish through, empty while the gateway is not running.
    pub pipeline: PluginPublisher,
    /// Where history is read from.
    pub store: Arc<dyn MessageLog>,
    /// Server-wide limits; tenants' overrides apply on top.
    pub limits: Limits,
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most messages in one batch.
    pub max_batch_messages: usize,
    /// Channel kinds by namespace: tracking channels take no messages.
    pub channels: Arc<ChannelRules>,
    /// Who is subscribed where, on this node.
    pub presence: Arc<Presence>,
    /// Latest positions of tracking channels.
    pub tracker: Arc<crate::tracking::Tracker>,
}

impl std::fmt::Debug for ChannelsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelsApi")
            .field("keys", &self.keys)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_batch_messages", &self.max_batch_messages)
            .finish_non_exhaustive()
    }
}

/// The routes of this API, also served over HTTP/3 on the gateway's port.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v1/channels/{channel}/messages",
            post(publish).get(history),
        )
        .route("/v1/messages/batch", post(batch))
}

async fn publish(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let channel = channel_of(path)?;
    api.check_kind(&channel)?;
    let request: PublishBody = read_json(&headers, body, api.max_body_bytes).await?;
    if request.channel.is_some() {
        return Err(ApiError::bad_request(
            "\"channel\" belongs in the path here; it is only a field of batch items",
        ));
    }
    let limits = state.limits_of(&tenant);
    let message = new_message(&tenant, &channel, request, &limits, None)?;
    let pipeline = api.running()?;
    let appended = outcome(pipeline.submit(message).await).await?;
    Ok((StatusCode::CREATED, Json(ack_json(&channel, &appended))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    messages: Vec<PublishBody>,
}

/// Publishes up to `max_batch_messages` messages, to any channels of the
/// tenant, in order. Every item is checked before any is published, so a
/// bad item fails the whole request with 400 and nothing is written. Each
/// published item is durable before the response, which lists one result
/// per item.
async fn batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let request: BatchBody = read_json(&headers, body, api.max_body_bytes).await?;
    let count = request.messages.len();
    if count == 0 {
        return Err(ApiError::bad_request("\"messages\" is empty"));
    }
    if count > api.max_batch_messages {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{count} messages in one batch; the limit is {}: split the batch",
                api.max_batch_messages
            ),
        ));
    }
    let limits = state.limits_of(&tenant);
    let mut messages = Vec::with_capacity(count);
    for (index, mut item) in request.messages.into_iter().enumerate() {
        let in_item = |e: ApiError| ApiError {
            message: format!("messages[{index}]: {}", e.message),
            ..e
        };
        let channel = item
            .channel
            .take()
            .ok_or_else(|| ApiError::bad_request("\"channel\" is missing"))
            .map_err(in_item)?;
        check_channel(&channel).map_err(in_item)?;
        api.check_kind(&channel).map_err(in_item)?;
        messages.push(new_message(&tenant, &channel, item, &limits, None).map_err(in_item)?);
    }
    let pipeline = api.running()?;
    // Queue every item before waiting, so they commit as one group.
    let mut pending: Vec<(Arc<str>, PublishReceipt)> = Vec::with_capacity(count);
    for message in messages {
        let channel = message.channel.channel.clone();
        pending.push((channel, pipeline.submit(message).await));
    }
    drop(pipeline);
    let mut results = Vec::with_capacity(count);
    let mut failed = Vec::new();
    for (channel, receipt) in pending {
        match outcome(receipt).await {
            Ok(appended) => results.push(ack_json(&channel, &appended)),
            Err(error) => {
                results.push(json!({
                    "channel": &*channel,
                    "error": { "code": error.code, "message": &error.message },
                }));
                failed.push(error);
            }
        }
    }
    if failed.len() == count {
        // Nothing was written: answer like a single publish would, so the
        // client's retry logic (503 + Retry-After) applies.
        return Err(failed.swap_remove(0));
    }
    Ok(Json(json!({ "results": results, "failed": failed.len() })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DirectionParam {
    Backward,
    Forward,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    limit: Option<u32>,
    before: Option<u64>,
    after: Option<u64>,
    direction: Option<DirectionParam>,
}

async fn history(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let channel = channel_of(path)?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = match params.limit.unwrap_or(DEFAULT_HISTORY_LIMIT) {
        0 => return Err(ApiError::bad_request("limit must be at least 1")),
        n => n.min(state.limits_of(&tenant).max_history_page) as usize,
    };
    let range = ReadRange {
        after: params.after,
        before: params.before,
        // One extra message tells whether another page exists.
        limit: limit + 1,
        direction: match params.direction {
            Some(DirectionParam::Forward) => Direction::Forward,
            Some(DirectionParam::Backward) | None => Direction::Backward,
        },
    };
    let key = ChannelKey::new(tenant, channel.as_str());
    let mut messages = api.store.read(&key, range).await.map_err(store_error)?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    let messages: Vec<Value> = messages.iter().map(message_json).collect();
    Ok(Json(
        json!({ "channel": channel, "messages": messages, "has_more": has_more }),
    ))
}

impl ChannelsApi {
    /// The pipeline, or 503 while the gateway is not (or no longer) running.
    pub(super) fn running(&self) -> Result<crate::pipeline::PublishPipeline, ApiError> {
        self.pipeline.pipeline().ok_or_else(shutting_down)
    }

    /// Refuses messages to tracking channels.
    pub(super) fn check_kind(&self, channel: &str) -> Result<(), ApiError> {
        if self.channels.options(channel).is_tracking() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "wrong_channel_kind",
                format!("{channel:?} is a tracking channel: it takes positions, not messages"),
            ));
        }
        Ok(())
    }
}

impl ApiState {
    /// The limits of `tenant`: the server's with its overrides.
    pub(super) fn limits_of(&self, tenant: &str) -> Limits {
        let limits = &self.channels.limits;
        match self.tenants.tenant(tenant) {
            Some(t) => limits.with_overrides(&t.limits),
            None => limits.clone(),
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the gateway is shutting down; nothing was written, retry (with the same idempotency key)",
    )
    .retry_after(Duration::from_secs(1))
}

pub(super) fn channel_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(channel) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_channel(&channel)?;
    Ok(channel)
}

pub(super) fn item_of(
    path: Result<Path<(String, Offset)>, PathRejection>,
) -> Result<(String, Offset), ApiError> {
    let Path((channel, offset)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_channel(&channel)?;
    if offset == 0 {
        return Err(ApiError::bad_request("offsets start at 1"));
    }
    Ok((channel, offset))
}

fn check_channel(channel: &str) -> Result<(), ApiError> {
    validate_channel(channel)
        .map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "invalid_channel", why))
}

/// Reads and parses a JSON body of at most `limit` bytes.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

pub(super) fn new_message(
    tenant: &Arc<str>,
    channel: &str,
    body: PublishBody,
    limits: &Limits,
    edit: Option<Edit>,
) -> Result<NewMessage, ApiError> {
    let checked =
        body.check(limits.max_payload_bytes as usize)
            .map_err(|invalid| match invalid {
                Invalid::Request(why) => ApiError::bad_request(why),
                Invalid::TooLarge(why) => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", why)
                }
            })?;
    let (id, timestamp_ms) = fresh_id();
    Ok(NewMessage {
        channel: ChannelKey::new(tenant.clone(), channel),
        id,
        timestamp_ms,
        sender: Arc::from(API_SENDER),
        payload: checked.payload,
        headers: checked.headers,
        idempotency_key: checked.idempotency_key.map(Arc::from),
        edit,
    })
}

/// A new message id (ULID) and the current time in Unix milliseconds.
pub(super) fn fresh_id() -> (MessageId, u64) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random = rand::random::<u128>() & ((1u128 << 80) - 1);
    (
        MessageId((u128::from(now_ms & 0xFFFF_FFFF_FFFF) << 80) | random),
        now_ms,
    )
}

/// Waits for a publish to be durable.
pub(super) async fn outcome(receipt: PublishReceipt) -> Result<Appended, ApiError> {
    match receipt.await {
        Ok(Ok(appended)) => Ok(appended),
        Ok(Err(error)) => Err(store_error(error)),
        Err(_) => Err(shutting_down()),
    }
}

pub(super) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable { retry_after, .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            error.to_string(),
        )
        .retry_after(retry_after),
        StoreError::Closed => shutting_down(),
        // The store refuses names and values the request supplied (an
        // entity id too long, say): the caller's mistake, not the server's.
        StoreError::Invalid(why) => ApiError::bad_request(why),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            other.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;

    use super::*;

    #[test]
    fn an_unavailable_store_is_a_503_with_retry_after() {
        let error = store_error(StoreError::Unavailable {
            reason: "no node answers".into(),
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(
            (error.status, error.code),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        );
        let response = error.into_response();
        assert_eq!(response.headers()["retry-after"], "2");
        let closed = store_error(StoreError::Closed);
        assert_eq!((closed.status.as_u16(), closed.code), (503, "unavailable"));
        let corrupt = store_error(StoreError::Corrupt { what: "x".into() });
        assert_eq!(
            (corrupt.status.as_u16(), corrupt.code),
            (500, "store_error")
        );
    }
}
