//! Plugin administration: upload, list, activate, roll back, delete.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use futures::future::BoxFuture;
use quiver_storage::{PluginRecord, PluginVersionMeta};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState};

/// What the API needs from the plugin host. The trait lives here, with its
/// user; the wasm host implements it.
pub trait PluginAdmin: Send + Sync + 'static {
    /// Validates, compiles, stores and activates a new version.
    fn upload<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        component: Bytes,
        config: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PluginVersionMeta, ApiError>>;
    fn list<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<Vec<PluginRecord>, ApiError>>;
    fn activate<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: u32,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
    fn rollback<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<u32, ApiError>>;
    fn delete<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>>;
}

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(list))
        .route("/{name}", put(upload).delete(delete))
        .route("/{name}/activate", post(activate))
        .route("/{name}/rollback", post(rollback))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    /// The plugin's config, as JSON text.
    config: Option<String>,
}

async fn upload(
    State(state): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<impl IntoResponse, ApiError> {
    state.require_admin(&headers)?;
    state.require_tenant(&tenant)?;
    if let Some(config) = &query.config {
        serde_json::from_str::<Value>(config)
            .map_err(|e| ApiError::bad_request(format!("config is not valid JSON: {e}")))?;
    }
    let limit = state.max_upload_bytes;
    let component = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    let meta = state
        .plugins
        .upload(&tenant, &name, component, query.config.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(version_json(&name, &meta, true))))
}

async fn list(
    State(state): State<ApiState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    state.require_admin(&headers)?;
    state.require_tenant(&tenant)?;
    let plugins = state.plugins.list(&tenant).await?;
    let plugins: Vec<Value> = plugins.iter().map(record_json).collect();
    Ok(Json(json!({ "plugins": plugins })))
}

#[derive(Debug, Deserialize)]
struct ActivateBody {
    version: u32,
}

async fn activate(
    State(state): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    state.require_admin(&headers)?;
    state.require_tenant(&tenant)?;
    let request: ActivateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"version\": N}}: {e}")))?;
    state
        .plugins
        .activate(&tenant, &name, request.version)
        .await?;
    Ok(Json(json!({ "name": name, "active": request.version })))
}

async fn rollback(
    State(state): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    state.require_admin(&headers)?;
    state.require_tenant(&tenant)?;
    let active = state.plugins.rollback(&tenant, &name).await?;
    Ok(Json(json!({ "name": name, "active": active })))
}

async fn delete(
    State(state): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    state.require_admin(&headers)?;
    state.require_tenant(&tenant)?;
    if state.plugins.delete(&tenant, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no plugin {name:?}")))
    }
}

fn version_json(name: &str, meta: &PluginVersionMeta, active: bool) -> Value {
    json!({
        "name": name,
        "version": meta.version,
        "sha256": meta.sha256,
        "size_bytes": meta.size_bytes,
        "uploaded_ms": meta.uploaded_ms,
        "config": serde_json::from_str::<Value>(&meta.config).unwrap_or(Value::Null),
        "active": active,
    })
}

fn record_json(record: &PluginRecord) -> Value {
    let versions: Vec<Value> = record
        .versions
        .iter()
        .map(|v| version_json(&record.name, v, record.active == Some(v.version)))
        .collect();
    json!({
        "name": &*record.name,
        "active": record.active,
        "previous": record.previous,
        "versions": versions,
    })
}
