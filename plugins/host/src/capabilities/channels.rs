//! `quiver:plugin/channels`: publishing into the plugin's own tenant
//! through the gateway's [`ChannelPublisher`]. The tenant is fixed by the
//! host; the plugin names only the channel.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasData, Linker};

use crate::ChannelPublisher;
use crate::bindings::quiver::plugin::channels::{self, Host};
use crate::limits::CpuMeter;

/// Largest payload a plugin may publish; the gateway's own limits apply
/// on top.
const MAX_PUBLISH_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub(crate) struct ChannelsCtx {
    pub(crate) publisher: Arc<dyn ChannelPublisher>,
    pub(crate) tenant: Arc<str>,
}

impl std::fmt::Debug for ChannelsCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelsCtx")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The context plus the call's CPU meter (publishing waits on storage).
pub(crate) struct ChannelsHost<'a> {
    pub(crate) ctx: &'a ChannelsCtx,
    pub(crate) meter: &'a mut CpuMeter,
}

pub(crate) trait ChannelsView: Send {
    fn channels(&mut self) -> ChannelsHost<'_>;
}

struct HasChannels;

impl HasData for HasChannels {
    type Data<'a> = ChannelsHost<'a>;
}

pub(crate) fn add_to_linker<T: ChannelsView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    channels::add_to_linker::<T, HasChannels>(linker, T::channels)
}

impl Host for ChannelsHost<'_> {
    async fn publish(
        &mut self,
        channel: String,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<u64, String> {
        if payload.len() > MAX_PUBLISH_BYTES {
            return Err(format!("payload over {MAX_PUBLISH_BYTES} bytes"));
        }
        self.meter.pause();
        let start = Instant::now();
        let fut = self.ctx.publisher.publish(
            &self.ctx.tenant,
            &channel,
            bytes::Bytes::from(payload),
            headers,
        );
        let r = fut.await;
        self.meter.resume(start.elapsed());
        r
    }
}
