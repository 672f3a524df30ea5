//! The wasm plugin host behind the gateway's traits: hooks for the
//! connection runtime, administration for the HTTP API, and the publish
//! capability plugins use.

use std::sync::{Arc, PoisonError, RwLock};

use axum::http::StatusCode;
use bytes::Bytes;
use futures::future::BoxFuture;
use quiver_plugin_host::{
    ChannelPublisher, Hook, PluginHost, PluginRecord, PluginVersionMeta, PublishVerdict,
    SessionInfo, TrackVerdict, UploadError, Verdict,
};
use quiver_session::channel::validate_channel;
use quiver_session::{Alert, HookCall, HookVerdict};
use quiver_storage::{ChannelKey, Header, MessageId, NewMessage};

use crate::api::{ApiError, PluginAdmin};
use crate::hooks::{HookContext, HookKind, Hooks};
use crate::pipeline::PublishPipeline;

/// Tenant plugins run by the wasm host.
#[derive(Clone, Debug)]
pub struct WasmPlugins {
    host: PluginHost,
}

impl WasmPlugins {
    async fn track(
        &self,
        session: &SessionInfo,
        channel: &str,
        position: &quiver_storage::Position,
    ) -> HookVerdict {
        let position = quiver_plugin_host::Position {
            entity: position.entity.to_string(),
            lat: position.lat,
            lon: position.lon,
            accuracy: position.accuracy,
            heading: position.heading,
            speed: position.speed,
            timestamp_ms: position.timestamp_ms,
        };
        match self.host.on_track(session, channel, &position).await {
            TrackVerdict::Accept { alerts } if alerts.is_empty() => HookVerdict::Allow,
            TrackVerdict::Accept { alerts } => HookVerdict::Alerts(
                alerts
                    .into_iter()
                    .map(|alert| Alert {
                        channel: alert.channel,
                        payload: alert.payload,
                    })
                    .collect(),
            ),
            TrackVerdict::Drop { .. } => HookVerdict::Drop,
            TrackVerdict::Failed { plugin, .. } => {
                HookVerdict::Failed(format!("plugin {plugin} failed"))
            }
        }
    }

    pub fn new(host: PluginHost) -> Self {
        Self { host }
    }
}

fn hook_of(kind: HookKind) -> Hook {
    match kind {
        HookKind::Connect => Hook::Connect,
        HookKind::Subscribe => Hook::Subscribe,
        HookKind::Publish => Hook::Publish,
        HookKind::Track => Hook::Track,
    }
}

/// Plugin failures reach the client as a generic reason; the host has
/// logged the details, which may be the plugin author's business only.
fn admission(verdict: Verdict) -> HookVerdict {
    match verdict {
        Verdict::Allow => HookVerdict::Allow,
        Verdict::Deny { reason, .. } => HookVerdict::Deny(reason),
        Verdict::Failed { plugin, .. } => HookVerdict::Failed(format!("plugin {plugin} failed")),
    }
}

impl Hooks for WasmPlugins {
    fn wants(&self, tenant: &str, hook: HookKind) -> bool {
        self.host.hooks(tenant).contains(hook_of(hook))
    }

    fn run<'a>(
        &'a self,
        context: HookContext<'a>,
        call: &'a HookCall,
    ) -> BoxFuture<'a, HookVerdict> {
        Box::pin(async move {
            let session = SessionInfo {
                tenant: context.tenant.into(),
                user: context.user.into(),
                session_id: context.session_id.into(),
                client: context.client.into(),
            };
            match call {
                HookCall::Connect => {
                    admission(self.host.on_connect(&session, context.claims_json).await)
                }
                HookCall::Subscribe { channel, .. } => {
                    admission(self.host.on_subscribe(&session, &channel.channel).await)
                }
                HookCall::Publish { message, .. } => self.publish(&session, message).await,
                HookCall::Track { channel, position } => {
                    self.track(&session, &channel.channel, position).await
                }
            }
        })
    }
}

impl WasmPlugins {
    async fn publish(&self, session: &SessionInfo, message: &NewMessage) -> HookVerdict {
        let headers = message
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let verdict = self
            .host
            .on_publish(
                session,
                &message.channel.channel,
                message.payload.clone(),
                headers,
            )
            .await;
        match verdict {
            PublishVerdict::Accept { payload, headers } => {
                let same_payload = payload.as_ptr() == message.payload.as_ptr()
                    && payload.len() == message.payload.len();
                let same_headers = headers.len() == message.headers.len()
                    && headers
                        .iter()
                        .zip(&message.headers)
                        .all(|((n, v), h)| *n == h.name && *v == h.value);
                if same_payload && same_headers {
                    HookVerdict::Allow
                } else {
                    let headers = headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect();
                    HookVerdict::Rewrite { payload, headers }
                }
            }
            PublishVerdict::Reject { reason, .. } => HookVerdict::Deny(reason),
            PublishVerdict::Drop { .. } => HookVerdict::Drop,
            PublishVerdict::Failed { plugin, .. } => {
                HookVerdict::Failed(format!("plugin {plugin} failed"))
            }
        }
    }
}

fn api_error(error: UploadError) -> ApiError {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status.as_u16() {
        400 => "invalid_component",
        404 => "not_found",
        409 => "conflict",
        413 => "too_large",
        503 => "unavailable",
        _ => "internal",
    };
    ApiError::new(status, code, error.to_string())
}

fn host_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(error.to_string())
}

impl PluginAdmin for WasmPlugins {
    fn upload<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        component: Bytes,
        config: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PluginVersionMeta, ApiError>> {
        Box::pin(async move {
            self.host
                .upload(tenant, name, component, config)
                .await
                .map_err(api_error)
        })
    }

    fn list<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<Vec<PluginRecord>, ApiError>> {
        Box::pin(async move { self.host.list(tenant).await.map_err(host_error) })
    }

    fn activate<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: u32,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.host
                .activate(tenant, name, version)
                .await
                .map_err(api_error)
        })
    }

    fn rollback<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<u32, ApiError>> {
        Box::pin(async move { self.host.rollback(tenant, name).await.map_err(api_error) })
    }

    fn delete<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, ApiError>> {
        Box::pin(async move { self.host.delete(tenant, name).await.map_err(host_error) })
    }
}

/// The `channels` capability: plugins publish into their own tenant
/// through the same pipeline as clients (durable before the offset is
/// returned), but without running publish hooks, so a plugin cannot loop
/// on its own messages. The pipeline exists only while the gateway runs,
/// hence the slot.
#[derive(Clone, Debug, Default)]
pub struct PluginPublisher {
    pipeline: Arc<RwLock<Option<PublishPipeline>>>,
}

impl PluginPublisher {
    /// Connects (or, with `None`, disconnects) the running gateway's pipeline.
    pub fn attach(&self, pipeline: Option<PublishPipeline>) {
        *self
            .pipeline
            .write()
            .unwrap_or_else(PoisonError::into_inner) = pipeline;
    }

    /// The running gateway's pipeline, if any. The HTTP publish API shares
    /// this slot.
    pub fn pipeline(&self) -> Option<PublishPipeline> {
        self.pipeline
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ChannelPublisher for PluginPublisher {
    fn publish(
        &self,
        tenant: &str,
        channel: &str,
        payload: Bytes,
        headers: Vec<(String, String)>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        let pipeline = self.pipeline();
        let checked = validate_channel(channel);
        let channel = ChannelKey::new(tenant, channel);
        Box::pin(async move {
            checked?;
            let pipeline = pipeline.ok_or("the gateway is not running")?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let random = rand::random::<u128>() & ((1u128 << 80) - 1);
            let message = NewMessage {
                channel,
                id: MessageId((u128::from(now_ms) << 80) | random),
                timestamp_ms: now_ms,
                sender: Arc::from("plugin"),
                payload,
                headers: headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                idempotency_key: None,
                edit: None,
            };
            let receipt = pipeline.submit(message).await;
            match receipt.await {
                Ok(Ok(appended)) => Ok(appended.offset),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("the gateway is shutting down".to_string()),
            }
        })
    }
}
