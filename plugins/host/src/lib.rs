//! Quiver's plugin host: runs tenants' WebAssembly components (wasmtime,
//! component model, the `quiver:plugin` world in `wit/`) on the gateway's
//! hooks, each call under a CPU budget, a wall-clock deadline and a memory
//! limit, so a misbehaving plugin fails only its own calls.
//!
//! The gateway creates one [`PluginHost`] per process with a
//! [`HostConfig`] and the [`HostServices`] it backs plugins with (store,
//! publisher, metrics registry), calls [`PluginHost::load_active`] at
//! startup, asks [`PluginHost::hooks`] before each hook point, and calls
//! `on_connect`, `on_subscribe`, `on_publish` and `on_track`. The admin API
//! maps to [`PluginHost::upload`], `list`, `activate`, `rollback` and
//! `delete`, and [`UploadError::status`] gives each failure's HTTP status.
//! With several gateway nodes on one store, [`PluginHost::reload`] brings a
//! node's running plugins in line with changes made on another.
//!
//! Layout (one concern per file):
//! - `bindings.rs`: the one `bindgen!` against `wit/`;
//! - `capabilities/`: one module per imported interface, plus the empty
//!   WASI subset;
//! - `engine.rs`: engine config (pooling, copy-on-write, epochs) and the
//!   epoch ticker; `limits.rs`: memory limiter and CPU meter;
//! - `cache.rs`: compiled artifacts on disk; `validate.rs`: what an upload
//!   must be; `prepare.rs`: bytes to runnable plugin;
//! - `pool.rs`: instance reuse and recycling; `plugin.rs`: one call per
//!   hook; `chain.rs`: a tenant's plugins in order; `tenant.rs`: atomic
//!   swaps; `lifecycle.rs`: upload and friends;
//! - `policy.rs`: failure policies; `metrics.rs`; `error.rs`.
//!
//! See `docs/PLUGINS.md` for writing plugins and the limits they run under.

#![warn(missing_docs)]

// Generated code uses `unsafe` internally (typed function handles it
// checked itself); the rest of the crate has none but `cache::load`.
#[allow(
    unsafe_code,
    missing_docs,
    unreachable_pub,
    missing_debug_implementations
)]
mod bindings;
mod cache;
mod capabilities;
mod chain;
mod config;
mod engine;
mod error;
mod host;
mod lifecycle;
mod limits;
mod metrics;
mod plugin;
mod policy;
mod pool;
mod prepare;
mod state;
mod tenant;
mod types;
mod validate;

pub use config::{HostConfig, TenantPluginLimits};
pub use error::{CallError, ForbiddenImport, HostError, UploadError};
pub use host::PluginHost;
pub use lifecycle::LoadReport;
pub use policy::{FailureMode, FailurePolicy};
pub use quiver_storage::{PluginRecord, PluginVersionMeta};
pub use types::{
    ChannelPublisher, Hook, HookSet, HostServices, Position, PublishVerdict, SessionInfo,
    TrackAlert, TrackVerdict, Verdict,
};
