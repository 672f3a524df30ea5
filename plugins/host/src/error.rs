//! Every error of the plugin host, one `#[non_exhaustive]` enum per layer:
//! [`CallError`] for a hook call (hot path: plain data, no boxing),
//! [`UploadError`] for the lifecycle operations (each maps to one HTTP
//! status), [`HostError`] for setup and bulk operations.

use std::time::Duration;

use quiver_storage::StoreError;

/// Why a hook call failed. The failure policy of the plugin decides what
/// the gateway does with it; the instance that failed is never reused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The plugin trapped: a panic, an `unreachable`, a bad memory access,
    /// a call to `exit`. `message` includes the end of the plugin's stderr
    /// (where Rust prints panic messages), when it wrote any.
    #[error("plugin trapped: {message}; fix the plugin (its last stderr output is included)")]
    Trap {
        /// wasmtime's description of the trap, then the stderr tail.
        message: String,
    },
    /// The call used up its CPU budget (time running plugin code, not
    /// counting waits for storage).
    #[error(
        "plugin exceeded its CPU budget of {budget:?} and was stopped; make the hook cheaper or ask the operator for a larger budget"
    )]
    Timeout {
        /// The budget that ran out.
        budget: Duration,
    },
    /// The call, waits included, took longer than the wall-clock deadline.
    #[error(
        "plugin call exceeded the {deadline:?} deadline (waiting on storage?) and was cancelled"
    )]
    Deadline {
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error(
        "plugin exceeded its memory limit of {limit_bytes} bytes and was stopped; use less memory per call"
    )]
    Memory {
        /// The limit the plugin hit.
        limit_bytes: usize,
    },
    /// No instance could be created because the process-wide instance pool
    /// is full. Transient; raise `max_instances` if it persists.
    #[error("no plugin instance available ({message}); retry, or raise the host's max_instances")]
    Overloaded {
        /// Which pool limit was reached.
        message: String,
    },
    /// A fresh instance could not be created for another reason.
    #[error("plugin could not be instantiated: {message}")]
    Instantiate {
        /// Why instantiation failed (a trap in an initialiser, say).
        message: String,
    },
    /// The plugin's active version could not be loaded (at startup, for
    /// instance after a gateway upgrade); re-upload it.
    #[error("plugin is not loaded: {message}; re-upload it")]
    Unavailable {
        /// Why the version could not be loaded.
        message: String,
    },
}

impl CallError {
    /// A short, bounded label for metrics: `trap`, `timeout`, `deadline`,
    /// `memory`, `overloaded`, `instantiate` or `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Trap { .. } => "trap",
            CallError::Timeout { .. } => "timeout",
            CallError::Deadline { .. } => "deadline",
            CallError::Memory { .. } => "memory",
            CallError::Overloaded { .. } => "overloaded",
            CallError::Instantiate { .. } => "instantiate",
            CallError::Unavailable { .. } => "unavailable",
        }
    }

    /// Every value of [`kind`](Self::kind), for pre-registering metrics.
    pub const KINDS: [&'static str; 7] = [
        "trap",
        "timeout",
        "deadline",
        "memory",
        "overloaded",
        "instantiate",
        "unavailable",
    ];
}

/// One import a component may not have, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForbiddenImport {
    /// The import's full name, e.g. `wasi:filesystem/preopens@0.2.6`.
    pub name: String,
    /// Why it is refused and what to do instead.
    pub reason: &'static str,
}

/// Why an upload, activation, rollback or other lifecycle operation failed.
/// [`status`](Self::status) gives the HTTP status for the admin API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// 413: the component is larger than the host accepts.
    #[error(
        "component is {size} bytes, over the {max}-byte limit; shrink it (release build, LTO, strip)"
    )]
    TooLarge {
        /// The component's size in bytes.
        size: usize,
        /// The host's limit ([`HostConfig::max_component_bytes`](crate::HostConfig::max_component_bytes)).
        max: usize,
    },
    /// 400: tenant or plugin name breaks the naming rules.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// 400: the config is not a JSON object or has a bad `failure_policy`.
    #[error("invalid plugin config: {0}")]
    InvalidConfig(String),
    /// 400: the bytes are not WebAssembly at all.
    #[error(
        "not a WebAssembly component (bad magic number); upload the .wasm that `cargo build --target wasm32-wasip2` produces"
    )]
    NotWasm,
    /// 400: a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 (not wasm32-unknown-unknown or wasip1)"
    )]
    CoreModule,
    /// 400: the component does not compile.
    #[error("component does not compile: {0}")]
    Compile(String),
    /// 400: the component imports what plugins may not have.
    #[error("component imports what plugins may not use: {}", describe_imports(.0))]
    ForbiddenImports(Vec<ForbiddenImport>),
    /// 400: the component lacks hook exports of the `quiver:plugin` world.
    #[error("component does not implement the quiver:plugin world; missing: {}; build it with quiver-plugin-sdk", .0.join(", "))]
    MissingExports(Vec<String>),
    /// 400: the component exports things the world does not have.
    #[error("component exports what the quiver:plugin world does not have: {}; build a library (crate-type cdylib) with quiver-plugin-sdk", .0.join(", "))]
    ExtraExports(Vec<String>),
    /// 400: names match but types do not (an incompatible world version).
    #[error(
        "component does not fit the quiver:plugin world: {0}; rebuild it against this gateway's SDK"
    )]
    Incompatible(String),
    /// 400: the component's `manifest` call failed.
    #[error("calling the plugin's manifest failed: {0}")]
    Manifest(CallError),
    /// 404: no plugin of that name in the tenant.
    #[error("tenant {tenant} has no plugin named {name}")]
    UnknownPlugin {
        /// The tenant asked about.
        tenant: String,
        /// The plugin name it does not have.
        name: String,
    },
    /// 404: the plugin has no such version.
    #[error("plugin {name} has no version {version}; `list` shows the versions")]
    UnknownVersion {
        /// The plugin.
        name: String,
        /// The version it does not have.
        version: u32,
    },
    /// 409: rollback with no previous version.
    #[error("plugin {name} has no previous version to roll back to")]
    NoPreviousVersion {
        /// The plugin.
        name: String,
    },
    /// 503 or 500: the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500: a bug or an environment problem in the host.
    #[error("plugin host error: {0}")]
    Internal(String),
}

fn describe_imports(imports: &[ForbiddenImport]) -> String {
    imports
        .iter()
        .map(|i| format!("`{}` ({})", i.name, i.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

impl UploadError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            UploadError::TooLarge { .. } => 413,
            UploadError::UnknownPlugin { .. } | UploadError::UnknownVersion { .. } => 404,
            UploadError::NoPreviousVersion { .. } => 409,
            UploadError::Store(e) if e.is_retryable() => 503,
            UploadError::Store(StoreError::Invalid(_)) => 400,
            UploadError::Store(_) | UploadError::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// Setup and bulk-operation failures of the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// wasmtime refused the engine configuration (for example limits that
    /// do not fit this machine's address space).
    #[error("cannot create the wasm engine: {0}; check the plugin host config")]
    Engine(String),
    /// The compiled-artifact cache directory cannot be created.
    #[error("cannot use plugin cache directory {path}: {source}")]
    CacheDir {
        /// The configured directory.
        path: std::path::PathBuf,
        /// Why it cannot be created or used.
        source: std::io::Error,
    },
    /// Registering the plugin metrics failed (usually a name clash: one
    /// registry can hold one plugin host).
    #[error("cannot register plugin metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
