//! Positions of tracking channels, for backends (dispatch screens, ETAs):
//! `GET /v1/channels/{channel}/positions`, the latest position of every
//! entity, and `GET /v1/channels/{channel}/positions/{entity}`, one
//! entity's stored history (kept for the namespace's history TTL).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use quiver_storage::{ChannelKey, Position};
use serde::Deserialize;
use serde_json::{Value, json};

use super::channels::{channel_of, store_error};
use super::{ApiError, ApiState};

/// History page size when the request gives no `limit`, and the most.
const DEFAULT_HISTORY_LIMIT: usize = 100;
const MAX_HISTORY_LIMIT: usize = 1000;

pub(super) fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/v1/channels/{channel}/positions", get(positions))
        .route(
            "/v1/channels/{channel}/positions/{entity}",
            get(entity_history),
        )
}

async fn positions(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let channel = channel_of(path)?;
    check_tracking(&state, &channel)?;
    let key = ChannelKey::new(tenant, channel.as_str());
    let mut latest = api.tracker.latest(&key).await;
    latest.sort_unstable_by(|a, b| a.entity.cmp(&b.entity));
    let positions: Vec<Value> = latest.iter().map(|p| position_json(p)).collect();
    Ok(Json(json!({ "channel": channel, "positions": positions })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    /// Only fixes taken at or after this time, Unix milliseconds.
    since_ms: Option<u64>,
    limit: Option<usize>,
}

/// One entity's stored positions, newest first. What was written in the
/// last second may not be there yet: the store is written behind the
/// live path.
async fn entity_history(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HistoryParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let Path((channel, entity)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let channel = channel_of(Ok(Path(channel)))?;
    check_tracking(&state, &channel)?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = match params.limit.unwrap_or(DEFAULT_HISTORY_LIMIT) {
        0 => return Err(ApiError::bad_request("limit must be at least 1")),
        n => n.min(MAX_HISTORY_LIMIT),
    };
    let key = ChannelKey::new(tenant, channel.as_str());
    let history = api
        .tracker
        .store()
        .position_history(&key, &entity, params.since_ms.unwrap_or(0), limit)
        .await
        .map_err(store_error)?;
    let positions: Vec<Value> = history.iter().map(position_json).collect();
    Ok(Json(
        json!({ "channel": channel, "entity": entity, "positions": positions }),
    ))
}

fn check_tracking(state: &ApiState, channel: &str) -> Result<(), ApiError> {
    if state.channels.channels.options(channel).is_tracking() {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "wrong_channel_kind",
        format!("{channel:?} is not a tracking channel"),
    ))
}

fn position_json(p: &Position) -> Value {
    json!({
        "entity": &*p.entity,
        "lat": p.lat,
        "lon": p.lon,
        "accuracy": p.accuracy,
        "heading": p.heading,
        "speed": p.speed,
        "timestamp_ms": p.timestamp_ms,
        "user": &*p.user,
    })
}
