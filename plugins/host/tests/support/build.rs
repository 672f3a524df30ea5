//! Builds plugins/examples for wasm32-wasip2, once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;

/// The examples workspace, found from whichever crate includes this file
/// (the host's tests and the gateway's).
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("plugins/examples"))
        .find(|dir| dir.join("Cargo.toml").exists())
        .expect("plugins/examples is above the crate")
}

/// `<target dir>/wasm`, beside the host's own build output.
fn wasm_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("wasm")
}

fn target_installed() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip2")
        .exists()
}

/// Builds every example (release, wasm32-wasip2) and returns the directory
/// with the `.wasm` files. Fails the test, never skips it, when the target
/// is missing.
pub fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            target_installed(),
            "the wasm32-wasip2 target is not installed; run `rustup target add wasm32-wasip2` \
             (the plugin tests build the example plugins with it)"
        );
        let target = wasm_target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(examples_dir().join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            // Flags meant for the host build must not leak into the guests.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("run cargo to build the example plugins");
        assert!(
            out.status.success(),
            "building the example plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip2/release")
    })
}

/// The component of example crate `name` (e.g. "profanity-filter",
/// "bad-memory-bomb").
pub fn wasm(name: &str) -> Bytes {
    let path = built().join(format!("{}.wasm", name.replace('-', "_")));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}
