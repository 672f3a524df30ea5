//! `GET /v1/channels/{channel}/presence`: who is subscribed, on this node,
//! to a channel with presence.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use quiver_storage::ChannelKey;
use serde_json::{Value, json};

use super::channels::channel_of;
use super::{ApiError, ApiState};

pub(super) fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/v1/channels/{channel}/presence", get(presence))
}

/// Who is subscribed to a channel with presence, on this node.
async fn presence(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let api = &state.channels;
    let tenant = api.keys.authenticate(&headers)?;
    let channel = channel_of(path)?;
    if !api.channels.options(&channel).presence {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "presence_disabled",
            format!(
                "{channel:?} has no presence: enable it for its namespace in the server's [[channels]] config"
            ),
        ));
    }
    let key = ChannelKey::new(tenant, channel.as_str());
    let members = api.presence.members(&key);
    let connections: u64 = members.iter().map(|(_, n)| u64::from(*n)).sum();
    let users: Vec<Value> = members
        .iter()
        .map(|(user, n)| json!({ "user": &**user, "connections": n }))
        .collect();
    Ok(Json(
        json!({ "channel": channel, "users": users, "connections": connections }),
    ))
}
