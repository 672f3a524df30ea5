//! Work a request needs beyond the session: tenant plugins, awaited in
//! order, and an edit's target check before its append.

use std::future::Future;
use std::time::Instant;

use quiver_session::{HookCall, HookVerdict, LaneId};
use quiver_storage::StoreError;

use super::{Completion, Driver, Transport};
use crate::hooks::{HookContext, HookKind};
use crate::pipeline::check_edit_target;

impl<T: Transport> Driver<T> {
    /// An edit first reads its target, off this connection's path like a
    /// store read of history, then goes through the pipeline like a
    /// publish; a target that is no editable item is refused with NotFound.
    /// The lane owes the answer until either arrives.
    pub(super) fn submit_edit(
        &mut self,
        lane: LaneId,
        request_id: u64,
        received: Instant,
        target: u64,
        message: quiver_storage::NewMessage,
    ) {
        let store = self.shared.delivery.store.clone();
        let pipeline = self.shared.pipeline.clone();
        self.pending.push(Box::pin(async move {
            let result = match check_edit_target(&*store, &message.channel, target).await {
                Ok(true) => {
                    let receipt = pipeline.submit(message).await;
                    receipt.await.unwrap_or(Err(StoreError::Closed))
                }
                Ok(false) => {
                    return Completion::EditTargetMissing {
                        lane,
                        request_id,
                        target,
                    };
                }
                Err(error) => Err(error),
            };
            Completion::Published {
                lane,
                request_id,
                received,
                result,
            }
        }));
    }

    /// Asks the tenant's plugins, awaiting them inline so this connection's
    /// requests keep their order; without a plugin for the hook nothing is
    /// awaited.
    pub(super) fn hook_future<'c>(
        &self,
        call: &'c HookCall,
    ) -> Option<impl Future<Output = HookVerdict> + Send + 'c> {
        let identity = self.session.identity()?;
        if !self
            .shared
            .hooks
            .wants(&identity.tenant, HookKind::of(call))
        {
            return None;
        }
        // Owned copies, so the await below holds no borrow of the driver.
        let hooks = self.shared.hooks.clone();
        let identity = identity.clone();
        let session_id = self.session.session_id().clone();
        let client = self.session.client().clone();
        Some(async move {
            let context = HookContext {
                tenant: &identity.tenant,
                user: &identity.user,
                session_id: &session_id,
                client: &client,
                claims_json: &identity.claims_json,
            };
            hooks.run(context, call).await
        })
    }
}
