//! Compiled components cached on disk, so a restart (or a second upload
//! of the same bytes) does not recompile. A file's name is the component's
//! SHA-256 plus the engine's compatibility hash: a wasmtime upgrade or a
//! changed engine setting simply misses the cache and recompiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use prometheus::IntCounter;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::HostError;

/// The directory and the engine's key part.
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    hits: IntCounter,
    misses: IntCounter,
}

/// Feeds `Hash` output into SHA-256, so the engine key is stable across
/// processes (std's hashers are not promised to be).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Never used: the digest is read with `finalize` instead.
        0
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hex SHA-256 of a component.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl ArtifactCache {
    pub(crate) fn open(
        dir: &Path,
        engine: &Engine,
        hits: IntCounter,
        misses: IntCounter,
    ) -> Result<Self, HostError> {
        std::fs::create_dir_all(dir).map_err(|source| HostError::CacheDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = hex(&h.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key,
            hits,
            misses,
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes` (whose hash is `sha256`): from
    /// the cache, or compiled now. Blocking (compiling takes tens to
    /// hundreds of milliseconds): call from `spawn_blocking`.
    ///
    /// `check` runs on a freshly compiled component before it is cached,
    /// so only components that passed validation are ever written.
    pub(crate) fn load_or_compile<E>(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
        check: impl FnOnce(&Component) -> Result<(), E>,
        compile_error: impl FnOnce(wasmtime::Error) -> E,
    ) -> Result<Component, E> {
        let path = self.path(sha256);
        if path.exists() {
            match load(engine, &path) {
                Ok(component) => {
                    self.hits.inc();
                    // Validation is cheap and the rules may have changed
                    // since the file was written.
                    check(&component)?;
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                        "unreadable compiled plugin in cache; recompiling");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        self.misses.inc();
        let component = Component::from_binary(engine, bytes).map_err(compile_error)?;
        check(&component)?;
        if let Err(e) = self.store(&path, &component) {
            // The cache is an optimisation: a full disk costs a recompile
            // at the next start, nothing more.
            tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled plugin");
        }
        Ok(component)
    }

    /// Writes atomically: a temporary file renamed into place, so a crash
    /// never leaves a truncated artifact under a valid name.
    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}

/// Maps a cached artifact into memory.
#[allow(unsafe_code)]
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code that
    // wasmtime produced. The file is ours: written only by `store` above
    // (from `Component::serialize` of a component we compiled and
    // validated), renamed into place atomically, named by the SHA-256 of
    // its source and by this engine's compatibility hash, in the cache
    // directory the operator gave this host and nobody else writes.
    // wasmtime additionally checks the header and engine settings and
    // refuses a mismatched file.
    unsafe { Component::deserialize_file(engine, path) }
}
