//! The HTTP API on its own TCP listener (`--api-listen`, default
//! 127.0.0.1:8080): the admin API for plugins, and the server-side publish
//! API for backends (also served over HTTP/3 on the gateway's UDP port,
//! see [`public_router`]). JSON in and out; every error is JSON with a code
//! and a message. docs/openapi.yaml documents every route.

pub mod channels;
mod edits;
mod error;
pub mod json;
pub mod keys;
pub mod plugins;
mod positions;
mod presence;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

pub use channels::ChannelsApi;
pub use error::ApiError;
pub use keys::ApiKeys;
pub use plugins::PluginAdmin;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The admin bearer token (never logged).
    pub admin_token: Arc<str>,
    pub plugins: Arc<dyn PluginAdmin>,
    /// Known tenants: a request for any other gets 404.
    pub tenants: Arc<quiver_session::Authenticator>,
    pub max_upload_bytes: usize,
    /// The publish API (tenant API keys, pipeline, store).
    pub channels: ChannelsApi,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("max_upload_bytes", &self.max_upload_bytes)
            .finish_non_exhaustive()
    }
}

/// Every route: the TCP listener's router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .nest("/v1/tenants/{tenant}/plugins", plugins::routes())
        .merge(channels::routes())
        .merge(edits::routes())
        .merge(presence::routes())
        .merge(positions::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The publish API alone, for HTTP/3 on the gateway's public UDP port:
/// the plugin admin routes stay on the private TCP listener.
pub fn public_router(state: ApiState) -> Router {
    channels::routes()
        .merge(edits::routes())
        .merge(presence::routes())
        .merge(positions::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; docs/openapi.yaml lists them")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; docs/openapi.yaml lists them",
    )
}

impl ApiState {
    /// Checks the admin bearer token in constant time.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        if constant_time_eq(presented.as_bytes(), self.admin_token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }

    pub fn require_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match self.tenants.tenant(tenant) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found(format!("no tenant {tenant:?}"))),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares without an early exit, so response time does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
