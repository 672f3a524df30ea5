//! `GET /v1/channels/{channel}/positions`: the latest position of every
//! entity of a tracking channel, for backends (dispatch screens, ETAs).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use quiver_storage::ChannelKey;
use serde_json::{Value, json};

use super::channels::channel_of;
use super::{ApiError, ApiState};

pub(super) fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/v1/channels/{channel}/positions", get(positions))
}

async fn positions(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let channel = channel_of(path)?;
    if !api.channels.options(&channel).is_tracking() {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "wrong_channel_kind",
            format!("{channel:?} is not a tracking channel"),
        ));
    }
    let key = ChannelKey::new(tenant, channel.as_str());
    let mut latest = api.tracker.latest(&key).await;
    latest.sort_unstable_by(|a, b| a.entity.cmp(&b.entity));
    let positions: Vec<Value> = latest
        .iter()
        .map(|p| {
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
        })
        .collect();
    Ok(Json(json!({ "channel": channel, "positions": positions })))
}
