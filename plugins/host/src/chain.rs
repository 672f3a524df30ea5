//! The hook chains: a tenant's active plugins run in name order. For
//! connect and subscribe the first denial wins; for publish each plugin
//! sees the previous one's rewrite and a rejection or drop stops the chain;
//! for track a drop stops the chain and alerts accumulate. A failed call
//! applies the plugin's failure policy: fail-closed ends the chain with
//! `Failed`, fail-open skips the plugin.

use std::ops::ControlFlow::{self, Break, Continue};
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

/// A message as the publish chain carries it: payload and headers.
type Message = (Bytes, Vec<(String, String)>);

/// The verdict a chain ends with when a fail-closed plugin's call fails.
trait Failed {
    fn failed(plugin: Arc<str>, error: CallError) -> Self;
}

impl Failed for Verdict {
    fn failed(plugin: Arc<str>, error: CallError) -> Self {
        Self::Failed { plugin, error }
    }
}

impl Failed for PublishVerdict {
    fn failed(plugin: Arc<str>, error: CallError) -> Self {
        Self::Failed { plugin, error }
    }
}

impl Failed for TrackVerdict {
    fn failed(plugin: Arc<str>, error: CallError) -> Self {
        Self::Failed { plugin, error }
    }
}

impl PluginHost {
    /// Runs the tenant's `on-connect` hooks. `claims_json` is the verified
    /// token's claims as a JSON object.
    pub async fn on_connect(&self, session: &SessionInfo, claims_json: &str) -> Verdict {
        self.admission_chain(session, Hook::Connect, async move |plugin| {
            plugin.on_connect(session, claims_json).await
        })
        .await
    }

    /// Runs the tenant's `on-subscribe` hooks.
    pub async fn on_subscribe(&self, session: &SessionInfo, channel: &str) -> Verdict {
        self.admission_chain(session, Hook::Subscribe, async move |plugin| {
            plugin.on_subscribe(session, channel).await
        })
        .await
    }

    /// Runs the tenant's `on-publish` hooks. `Accept` carries the message
    /// to store: the original, or the last plugin's rewrite. The gateway
    /// should re-apply its own size limits to a rewritten message.
    pub async fn on_publish(
        &self,
        session: &SessionInfo,
        channel: &str,
        payload: Bytes,
        headers: Vec<(String, String)>,
    ) -> PublishVerdict {
        let mut message = (payload, headers);
        let step = async move |plugin: &LoadedPlugin, message: &mut Message| {
            let (payload, headers) = message;
            let answer = plugin
                .on_publish(session, channel, payload, headers)
                .await?;
            let name = || Arc::clone(&plugin.name);
            Ok(match answer {
                wit::PublishVerdict::Accept => Continue(()),
                wit::PublishVerdict::Rewrite(message) => {
                    *payload = Bytes::from(message.payload);
                    *headers = message.headers;
                    Continue(())
                }
                wit::PublishVerdict::Reject(reason) => Break(PublishVerdict::Reject {
                    plugin: name(),
                    reason,
                }),
                wit::PublishVerdict::Drop => Break(PublishVerdict::Drop { plugin: name() }),
            })
        };
        let ended = self.chain(session, Hook::Publish, &mut message, step).await;
        let (payload, headers) = message;
        ended.unwrap_or(PublishVerdict::Accept { payload, headers })
    }

    /// Runs the tenant's `on-track` hooks (called by the tracking feature).
    pub async fn on_track(
        &self,
        session: &SessionInfo,
        channel: &str,
        position: &Position,
    ) -> TrackVerdict {
        let mut alerts = Vec::new();
        let step = async move |plugin: &LoadedPlugin, alerts: &mut Vec<TrackAlert>| {
            let answer = plugin.on_track(session, channel, position).await?;
            let name = || Arc::clone(&plugin.name);
            Ok(match answer {
                wit::TrackVerdict::Accept => Continue(()),
                wit::TrackVerdict::Alert(alert) => {
                    alerts.push(TrackAlert {
                        plugin: name(),
                        channel: alert.channel,
                        payload: Bytes::from(alert.payload),
                    });
                    Continue(())
                }
                wit::TrackVerdict::Drop => Break(TrackVerdict::Drop { plugin: name() }),
            })
        };
        let ended = self.chain(session, Hook::Track, &mut alerts, step).await;
        ended.unwrap_or(TrackVerdict::Accept { alerts })
    }

    /// The connect or subscribe chain: the first denial wins.
    async fn admission_chain(
        &self,
        session: &SessionInfo,
        hook: Hook,
        call: impl Copy + AsyncFnOnce(&LoadedPlugin) -> Result<wit::Admission, CallError>,
    ) -> Verdict {
        let step = async move |plugin: &LoadedPlugin, _: &mut ()| {
            Ok(match call(plugin).await? {
                wit::Admission::Allow => Continue(()),
                wit::Admission::Deny(reason) => Break(Verdict::Deny {
                    plugin: Arc::clone(&plugin.name),
                    reason,
                }),
            })
        };
        let ended = self.chain(session, hook, &mut (), step).await;
        ended.unwrap_or(Verdict::Allow)
    }

    /// The shape every chain shares: runs `step` on each of the session
    /// tenant's plugins that implement `hook`, in name order, until one
    /// returns `Break`. `state` is what the chain carries from one plugin
    /// to the next (a rewritten message, alerts). A failed call applies the
    /// plugin's failure policy: fail-open skips the plugin, fail-closed
    /// ends the chain with `V::failed`. Returns the verdict that ended the
    /// chain, or `None` if none did (or the tenant has no plugins).
    ///
    /// `step` is a `Copy` async closure called once per plugin: each chain
    /// stays one future, with nothing boxed or allocated per call. (An
    /// `AsyncFnMut` would say the same more directly, but the compiler
    /// cannot yet prove its futures `Send`.)
    async fn chain<S, V: Failed>(
        &self,
        session: &SessionInfo,
        hook: Hook,
        state: &mut S,
        step: impl Copy + AsyncFnOnce(&LoadedPlugin, &mut S) -> Result<ControlFlow<V>, CallError>,
    ) -> Option<V> {
        let tenant = self.inner.tenants.get(&session.tenant)?;
        for plugin in tenant.plugins.iter().filter(|p| p.hooks.contains(hook)) {
            match step(plugin, state).await {
                Ok(Continue(())) => {}
                Ok(Break(verdict)) => return Some(verdict),
                Err(error) => {
                    if let Some(plugin) = on_failure(session, plugin, hook, &error) {
                        return Some(V::failed(plugin, error));
                    }
                }
            }
        }
        None
    }
}

/// The gateway awaits the chains on spawned tasks, so their futures must
/// be `Send`: this stops compiling if one is not.
#[cfg(test)]
#[allow(dead_code)]
fn chains_are_send(host: &PluginHost, s: &SessionInfo, position: &Position) {
    fn send<T: Send>(_: T) {}
    send(host.on_connect(s, "{}"));
    send(host.on_subscribe(s, "c"));
    send(host.on_publish(s, "c", Bytes::new(), Vec::new()));
    send(host.on_track(s, "c", position));
}
