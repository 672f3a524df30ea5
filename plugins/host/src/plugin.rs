//! One loaded plugin version: its manifest, failure policy and instance
//! pool, and one method per hook that runs a single call under limits.

use std::sync::Arc;

use wasmtime::Store;

use crate::bindings::exports::quiver::plugin::hooks as wit;
use crate::pool::InstancePool;
use crate::state::PluginState;
use crate::{CallError, FailurePolicy, Hook, HookSet, Position, SessionInfo};

/// A plugin version as the call path sees it. Shared through `Arc`: a
/// call in flight keeps its version alive after a swap.
#[derive(Debug)]
pub(crate) struct LoadedPlugin {
    pub(crate) name: Arc<str>,
    pub(crate) version: u32,
    pub(crate) hooks: HookSet,
    pub(crate) policy: FailurePolicy,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Boxed: the pool is large and a broken plugin is rare.
    Ready(Box<InstancePool>),
    /// The stored active version could not be loaded (at startup). It is
    /// kept, with every hook "implemented" and failing, so its failure
    /// policy still applies: a fail-closed plugin keeps blocking rather
    /// than silently disappearing.
    Broken(String),
}

/// Borrowed view of a session for the guest: no allocation per call.
fn wit_session(s: &SessionInfo) -> wit::SessionInfo<'_> {
    wit::SessionInfo {
        tenant: &s.tenant,
        user: &s.user,
        session_id: &s.session_id,
        client: &s.client,
    }
}

impl LoadedPlugin {
    pub(crate) fn ready(
        name: Arc<str>,
        version: u32,
        hooks: HookSet,
        policy: FailurePolicy,
        pool: InstancePool,
    ) -> Self {
        Self {
            name,
            version,
            hooks,
            policy,
            body: Body::Ready(Box::new(pool)),
        }
    }

    pub(crate) fn broken(
        name: Arc<str>,
        version: u32,
        policy: FailurePolicy,
        reason: String,
    ) -> Self {
        Self {
            name,
            version,
            hooks: Hook::ALL.into_iter().collect(),
            policy,
            body: Body::Broken(reason),
        }
    }

    fn pool(&self) -> Result<&InstancePool, CallError> {
        match &self.body {
            Body::Ready(pool) => Ok(pool),
            Body::Broken(reason) => Err(CallError::Unavailable {
                message: reason.clone(),
            }),
        }
    }

    /// The pool, for operations outside calls (metrics cleanup).
    pub(crate) fn instance_pool(&self) -> Option<&InstancePool> {
        match &self.body {
            Body::Ready(pool) => Some(pool),
            Body::Broken(_) => None,
        }
    }

    /// Calls `manifest` and turns it into a hook set.
    pub(crate) async fn read_manifest(pool: &InstancePool) -> Result<HookSet, CallError> {
        let manifest = call(pool, None, async |hooks, store| {
            hooks.call_manifest(store).await
        })
        .await?;
        Ok(manifest
            .hooks
            .into_iter()
            .map(|h| match h {
                wit::Hook::OnConnect => Hook::Connect,
                wit::Hook::OnSubscribe => Hook::Subscribe,
                wit::Hook::OnPublish => Hook::Publish,
                wit::Hook::OnTrack => Hook::Track,
            })
            .collect())
    }

    pub(crate) async fn on_connect(
        &self,
        s: &SessionInfo,
        claims: &str,
    ) -> Result<wit::Admission, CallError> {
        call(self.pool()?, Some(Hook::Connect), async |hooks, store| {
            hooks.call_on_connect(store, wit_session(s), claims).await
        })
        .await
    }

    pub(crate) async fn on_subscribe(
        &self,
        s: &SessionInfo,
        channel: &str,
    ) -> Result<wit::Admission, CallError> {
        call(self.pool()?, Some(Hook::Subscribe), async |hooks, store| {
            hooks
                .call_on_subscribe(store, wit_session(s), channel)
                .await
        })
        .await
    }

    pub(crate) async fn on_publish(
        &self,
        s: &SessionInfo,
        channel: &str,
        payload: &[u8],
        headers: &[(String, String)],
    ) -> Result<wit::PublishVerdict, CallError> {
        call(self.pool()?, Some(Hook::Publish), async |hooks, store| {
            // Collecting an empty iterator does not allocate.
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            hooks
                .call_on_publish(store, wit_session(s), channel, payload, &headers)
                .await
        })
        .await
    }

    pub(crate) async fn on_track(
        &self,
        s: &SessionInfo,
        channel: &str,
        p: &Position,
    ) -> Result<wit::TrackVerdict, CallError> {
        call(self.pool()?, Some(Hook::Track), async |hooks, store| {
            let position = wit::Position {
                entity: &p.entity,
                lat: p.lat,
                lon: p.lon,
                accuracy: p.accuracy,
                heading: p.heading,
                speed: p.speed,
                timestamp_ms: p.timestamp_ms,
            };
            hooks
                .call_on_track(store, wit_session(s), channel, position)
                .await
        })
        .await
    }
}

/// Runs one export call on an instance checked out of `pool`, under the
/// wall-clock deadline, then hands the outcome to `finish` (metrics for
/// `hook`, check-in or drop of the instance). `export` makes the call from
/// the guest's hook exports and the instance's store. It is an async
/// closure, so every hook's call path stays one future: nothing is boxed
/// or allocated per call.
async fn call<T>(
    pool: &InstancePool,
    hook: Option<Hook>,
    export: impl AsyncFnOnce(&wit::Guest, &mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let mut c = pool.checkout().await?;
    let deadline = pool.env().limits.wall_deadline;
    let i = &mut c.instance;
    let call = export(i.guest.quiver_plugin_hooks(), &mut i.store);
    let outcome = tokio::time::timeout(deadline, call).await;
    pool.finish(hook, c, outcome)
}
