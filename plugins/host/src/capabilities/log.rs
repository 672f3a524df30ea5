//! `quiver:plugin/log`: structured logs through `tracing`, tagged with the
//! plugin's tenant and name. Bounded per call so a chatty plugin cannot
//! flood the gateway's log.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use crate::bindings::quiver::plugin::log::{self, Host, Level};

/// Lines one call may log; the rest are counted and dropped.
const MAX_LINES_PER_CALL: u32 = 32;
/// Longest message and field value kept, in bytes.
const MAX_TEXT: usize = 2048;

#[derive(Debug)]
pub(crate) struct LogCtx {
    pub(crate) tenant: Arc<str>,
    pub(crate) plugin: Arc<str>,
    /// Lines logged in the current call; reset when a call starts.
    pub(crate) lines: u32,
}

impl LogCtx {
    pub(crate) fn new(tenant: Arc<str>, plugin: Arc<str>) -> Self {
        Self {
            tenant,
            plugin,
            lines: 0,
        }
    }
}

pub(crate) trait LogView: Send {
    fn log(&mut self) -> &mut LogCtx;
}

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = &'a mut LogCtx;
}

pub(crate) fn add_to_linker<T: LogView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasLog>(linker, T::log)
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for LogCtx {
    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        self.lines += 1;
        if self.lines > MAX_LINES_PER_CALL {
            if self.lines == MAX_LINES_PER_CALL + 1 {
                tracing::warn!(tenant = %self.tenant, plugin = %self.plugin,
                    "plugin logged more than {MAX_LINES_PER_CALL} lines in one call; dropping the rest");
            }
            return;
        }
        // tracing needs field names at compile time, so the plugin's
        // fields travel as one `k=v k=v` string.
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{}={}", clip(k), clip(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let (tenant, plugin, message) = (&*self.tenant, &*self.plugin, clip(&message));
        match level {
            Level::Trace => {
                tracing::trace!(target: "quiver_plugin", tenant, plugin, fields, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "quiver_plugin", tenant, plugin, fields, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "quiver_plugin", tenant, plugin, fields, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "quiver_plugin", tenant, plugin, fields, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "quiver_plugin", tenant, plugin, fields, "{message}")
            }
        }
    }
}
