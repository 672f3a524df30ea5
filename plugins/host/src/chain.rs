//! The hook chains: a tenant's active plugins run in name order. For
//! connect and subscribe the first denial wins; for publish each plugin
//! sees the previous one's rewrite and a rejection or drop stops the chain;
//! for track a drop stops the chain and alerts accumulate. A failed call
//! applies the plugin's failure policy: fail-closed ends the chain with
//! `Failed`, fail-open skips the plugin.

use std::sync::Arc;

use bytes::Bytes;

use crate::bindings::exports::quiver::plugin::hooks as wit;
use crate::plugin::LoadedPlugin;
use crate::policy::FailureMode;
use crate::{
    CallError, Hook, PluginHost, Position, PublishVerdict, SessionInfo, TrackAlert, TrackVerdict,
    Verdict,
};

/// A failed call: logged, then `Some(plugin)` if it must end the chain.
fn on_failure(
    session: &SessionInfo,
    plugin: &LoadedPlugin,
    hook: Hook,
    error: &CallError,
) -> Option<Arc<str>> {
    let mode = plugin.policy.mode(hook);
    tracing::warn!(tenant = %session.tenant, plugin = %plugin.name, version = plugin.version,
        hook = hook.name(), kind = error.kind(), fail_open = (mode == FailureMode::FailOpen),
        "plugin call failed: {error}");
    (mode == FailureMode::FailClosed).then(|| Arc::clone(&plugin.name))
}

impl PluginHost {
    /// Runs the tenant's `on-connect` hooks. `claims_json` is the verified
    /// token's claims as a JSON object.
    pub async fn on_connect(&self, session: &SessionInfo, claims_json: &str) -> Verdict {
        let Some(tenant) = self.inner.tenants.get(&session.tenant) else {
            return Verdict::Allow;
        };
        for plugin in tenant
            .plugins
            .iter()
            .filter(|p| p.hooks.contains(Hook::Connect))
        {
            match plugin.on_connect(session, claims_json).await {
                Ok(wit::Admission::Allow) => {}
                Ok(wit::Admission::Deny(reason)) => {
                    return Verdict::Deny {
                        plugin: Arc::clone(&plugin.name),
                        reason,
                    };
                }
                Err(error) => {
                    if let Some(plugin) = on_failure(session, plugin, Hook::Connect, &error) {
                        return Verdict::Failed { plugin, error };
                    }
                }
            }
        }
        Verdict::Allow
    }

    /// Runs the tenant's `on-subscribe` hooks.
    pub async fn on_subscribe(&self, session: &SessionInfo, channel: &str) -> Verdict {
        let Some(tenant) = self.inner.tenants.get(&session.tenant) else {
            return Verdict::Allow;
        };
        for plugin in tenant
            .plugins
            .iter()
            .filter(|p| p.hooks.contains(Hook::Subscribe))
        {
            match plugin.on_subscribe(session, channel).await {
                Ok(wit::Admission::Allow) => {}
                Ok(wit::Admission::Deny(reason)) => {
                    return Verdict::Deny {
                        plugin: Arc::clone(&plugin.name),
                        reason,
                    };
                }
                Err(error) => {
                    if let Some(plugin) = on_failure(session, plugin, Hook::Subscribe, &error) {
                        return Verdict::Failed { plugin, error };
                    }
                }
            }
        }
        Verdict::Allow
    }

    /// Runs the tenant's `on-publish` hooks. `Accept` carries the message
    /// to store: the original, or the last plugin's rewrite. The gateway
    /// should re-apply its own size limits to a rewritten message.
    pub async fn on_publish(
        &self,
        session: &SessionInfo,
        channel: &str,
        mut payload: Bytes,
        mut headers: Vec<(String, String)>,
    ) -> PublishVerdict {
        let Some(tenant) = self.inner.tenants.get(&session.tenant) else {
            return PublishVerdict::Accept { payload, headers };
        };
        for plugin in tenant
            .plugins
            .iter()
            .filter(|p| p.hooks.contains(Hook::Publish))
        {
            match plugin
                .on_publish(session, channel, &payload, &headers)
                .await
            {
                Ok(wit::PublishVerdict::Accept) => {}
                Ok(wit::PublishVerdict::Rewrite(message)) => {
                    payload = Bytes::from(message.payload);
                    headers = message.headers;
                }
                Ok(wit::PublishVerdict::Reject(reason)) => {
                    return PublishVerdict::Reject {
                        plugin: Arc::clone(&plugin.name),
                        reason,
                    };
                }
                Ok(wit::PublishVerdict::Drop) => {
                    return PublishVerdict::Drop {
                        plugin: Arc::clone(&plugin.name),
                    };
                }
                Err(error) => {
                    if let Some(plugin) = on_failure(session, plugin, Hook::Publish, &error) {
                        return PublishVerdict::Failed { plugin, error };
                    }
                }
            }
        }
        PublishVerdict::Accept { payload, headers }
    }

    /// Runs the tenant's `on-track` hooks (called by the tracking feature).
    pub async fn on_track(
        &self,
        session: &SessionInfo,
        channel: &str,
        position: &Position,
    ) -> TrackVerdict {
        let mut alerts = Vec::new();
        let Some(tenant) = self.inner.tenants.get(&session.tenant) else {
            return TrackVerdict::Accept { alerts };
        };
        for plugin in tenant
            .plugins
            .iter()
            .filter(|p| p.hooks.contains(Hook::Track))
        {
            match plugin.on_track(session, channel, position).await {
                Ok(wit::TrackVerdict::Accept) => {}
                Ok(wit::TrackVerdict::Alert(alert)) => alerts.push(TrackAlert {
                    plugin: Arc::clone(&plugin.name),
                    channel: alert.channel,
                    payload: Bytes::from(alert.payload),
                }),
                Ok(wit::TrackVerdict::Drop) => {
                    return TrackVerdict::Drop {
                        plugin: Arc::clone(&plugin.name),
                    };
                }
                Err(error) => {
                    if let Some(plugin) = on_failure(session, plugin, Hook::Track, &error) {
                        return TrackVerdict::Failed { plugin, error };
                    }
                }
            }
        }
        TrackVerdict::Accept { alerts }
    }
}
