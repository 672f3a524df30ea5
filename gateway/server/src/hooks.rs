//! What the connection runtime needs from tenant plugins. The trait lives
//! here, in the crate that calls it; `plugins::WasmPlugins` implements it
//! with the wasm plugin host.

use futures::future::BoxFuture;
use quiver_session::{HookCall, HookVerdict};

/// Which hook a call is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    Connect,
    Subscribe,
    Publish,
    Track,
}

impl HookKind {
    pub fn of(call: &HookCall) -> Self {
        match call {
            HookCall::Connect => HookKind::Connect,
            HookCall::Subscribe { .. } => HookKind::Subscribe,
            HookCall::Publish { .. } => HookKind::Publish,
            HookCall::Track { .. } => HookKind::Track,
        }
    }
}

/// Who a hook runs for.
#[derive(Clone, Copy, Debug)]
pub struct HookContext<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub session_id: &'a str,
    pub client: &'a str,
    pub claims_json: &'a str,
}

/// Tenant plugins as seen by a connection.
pub trait Hooks: Send + Sync + 'static {
    /// Whether any active plugin of the tenant implements the hook. Cheap
    /// and synchronous: on the common path (no plugin) nothing is awaited.
    fn wants(&self, tenant: &str, hook: HookKind) -> bool;

    /// Runs the tenant's plugins on the call, in order, and returns their
    /// combined verdict (after each plugin's failure policy).
    fn run<'a>(
        &'a self,
        context: HookContext<'a>,
        call: &'a HookCall,
    ) -> BoxFuture<'a, HookVerdict>;
}
