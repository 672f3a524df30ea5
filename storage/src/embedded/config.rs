use std::path::PathBuf;
use std::time::Duration;

use crate::StoreError;

/// Configuration of [`EmbeddedStore`](super::EmbeddedStore).
///
/// Build it with [`EmbeddedConfig::new`] and adjust it with the chainable
/// setters; every field's default is documented on the field.
///
/// ```
/// use std::time::Duration;
/// use quiver_storage::embedded::EmbeddedConfig;
///
/// let config = EmbeddedConfig::new("/var/lib/quiver")
///     .idempotency_window(Duration::from_secs(3600))
///     .max_batch(512);
/// assert_eq!(config.max_batch, 512);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmbeddedConfig {
    /// Directory of the fjall database; created if missing. Only one process
    /// may open it at a time. No default.
    pub path: PathBuf,
    /// How long an idempotency key is remembered. A retry after this is
    /// treated as a new message. Default: 24 hours.
    pub idempotency_window: Duration,
    /// Soft limit on messages per group commit (one fsync). Queued append
    /// calls are grouped until adding the next one would pass it; a single
    /// call larger than this still commits, alone. Default: 1024.
    pub max_batch: usize,
    /// Soft limit on encoded bytes per group commit, so a burst of large
    /// payloads does not build one huge journal write. Default: 16 MiB.
    pub max_group_bytes: usize,
    /// Append calls that may wait for the writer thread before `append`
    /// itself waits (backpressure). Default: 1024.
    pub queue_depth: usize,
    /// How often the writer thread sweeps expired idempotency records and
    /// expired key-value data and position history off disk. Lookups already ignore expired records; the sweep only
    /// reclaims space. Default: 5 minutes.
    pub sweep_interval: Duration,
}

impl EmbeddedConfig {
    /// A configuration with every default, storing data under `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idempotency_window: Duration::from_secs(24 * 60 * 60),
            max_batch: 1024,
            max_group_bytes: 16 * 1024 * 1024,
            queue_depth: 1024,
            sweep_interval: Duration::from_secs(5 * 60),
        }
    }

    /// Sets [`idempotency_window`](Self::idempotency_window).
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Sets [`max_batch`](Self::max_batch).
    pub fn max_batch(mut self, messages: usize) -> Self {
        self.max_batch = messages;
        self
    }

    /// Sets [`max_group_bytes`](Self::max_group_bytes).
    pub fn max_group_bytes(mut self, bytes: usize) -> Self {
        self.max_group_bytes = bytes;
        self
    }

    /// Sets [`queue_depth`](Self::queue_depth).
    pub fn queue_depth(mut self, calls: usize) -> Self {
        self.queue_depth = calls;
        self
    }

    /// Sets [`sweep_interval`](Self::sweep_interval).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let zero = |name: &str| {
            StoreError::Invalid(format!("embedded store config: {name} must be at least 1"))
        };
        if self.max_batch == 0 {
            return Err(zero("max_batch"));
        }
        if self.max_group_bytes == 0 {
            return Err(zero("max_group_bytes"));
        }
        if self.queue_depth == 0 {
            return Err(zero("queue_depth"));
        }
        Ok(())
    }
}
