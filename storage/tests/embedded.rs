//! The embedded store's integration tests, one binary grouped by area:
//! - `conformance`: the shared backend suite, one test per case;
//! - `durability`: reopen and idempotency expiry;
//! - `crash`: a real SIGKILL of a writing child process.

// The crate root's modules resolve next to it, not in a directory named
// after it, hence the paths.
#[cfg(feature = "conformance")]
#[path = "embedded/conformance.rs"]
mod conformance;
#[path = "embedded/crash.rs"]
mod crash;
#[path = "embedded/durability.rs"]
mod durability;

use std::path::Path;

use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};

/// Opens a store under `path`, panicking with the error (test code).
fn open(path: &Path) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedConfig::new(path)).unwrap_or_else(|e| panic!("open {path:?}: {e}"))
}
