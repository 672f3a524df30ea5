//! What an uploaded component must be: a component (not a core module,
//! not garbage) whose imports are all in the allowed set and whose exports
//! are exactly the `quiver:plugin/hooks` interface. Each refusal names the
//! offending import or export.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::error::{ForbiddenImport, UploadError};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// The exported interface, and its version series.
const HOOKS_INTERFACE: &str = "quiver:plugin/hooks@0.1.";
/// Functions the hooks interface must export.
const HOOK_FUNCTIONS: [&str; 5] = [
    "manifest",
    "on-connect",
    "on-subscribe",
    "on-publish",
    "on-track",
];

/// Capability interfaces a plugin may import (any 0.1.x).
const CAPABILITIES: [&str; 6] = ["kv", "channels", "log", "metrics", "clock", "config"];

/// WASI 0.2 interfaces a Rust standard library imports, all linked with
/// an empty context (see `capabilities/wasi.rs`).
const WASI_ALLOWED: [&str; 18] = [
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Checks the binary header: wasm at all, and a component rather than a
/// core module. Cheap, so it runs before compiling.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), UploadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(UploadError::NotWasm);
    }
    // Bytes 4..8 are version (u16) and layer (u16): layer 0 is a core
    // module, layer 1 a component.
    match bytes[6..8] {
        [0, 0] => Err(UploadError::CoreModule),
        [1, 0] => Ok(()),
        _ => Err(UploadError::NotWasm),
    }
}

/// Splits `ns:pkg/iface@version` into (`ns:pkg/iface`, `version`).
fn split_version(name: &str) -> (&str, &str) {
    name.split_once('@').unwrap_or((name, ""))
}

/// Why `name` may not be imported, or `None` if it may.
fn import_refusal(name: &str) -> Option<&'static str> {
    let (iface, version) = split_version(name);
    if let Some(cap) = iface.strip_prefix("quiver:plugin/") {
        return if CAPABILITIES.contains(&cap) && version.starts_with("0.1.") {
            None
        } else {
            Some("not a capability of quiver:plugin@0.1")
        };
    }
    if iface.starts_with("wasi:filesystem/") {
        return Some("plugins have no filesystem; remove file access (std::fs), keep state in kv");
    }
    if iface.starts_with("wasi:sockets/") {
        return Some("plugins have no network access; remove std::net, publish with channels");
    }
    if iface.starts_with("wasi:http/") {
        return Some("plugins cannot make HTTP requests");
    }
    if WASI_ALLOWED.contains(&iface) && version.starts_with("0.2.") {
        return None;
    }
    Some("not provided to plugins")
}

/// Checks imports and exports of a compiled component against the world.
pub(crate) fn check_world(engine: &Engine, component: &Component) -> Result<(), UploadError> {
    let ty = component.component_type();

    let forbidden: Vec<ForbiddenImport> = ty
        .imports(engine)
        .filter_map(|(name, _)| {
            import_refusal(name).map(|reason| ForbiddenImport {
                name: name.to_owned(),
                reason,
            })
        })
        .collect();
    if !forbidden.is_empty() {
        return Err(UploadError::ForbiddenImports(forbidden));
    }

    let mut hooks = None;
    let mut extra = Vec::new();
    for (name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentInstance(instance) if name.starts_with(HOOKS_INTERFACE) => {
                let funcs: Vec<String> = instance
                    .exports(engine)
                    .map(|(n, _)| n.to_owned())
                    .collect();
                hooks = Some(funcs);
            }
            _ => extra.push(name.to_owned()),
        }
    }
    if !extra.is_empty() {
        return Err(UploadError::ExtraExports(extra));
    }
    let Some(funcs) = hooks else {
        return Err(UploadError::MissingExports(vec![
            "the exported interface quiver:plugin/hooks@0.1.0".into(),
        ]));
    };
    let missing: Vec<String> = HOOK_FUNCTIONS
        .iter()
        .filter(|f| !funcs.iter().any(|n| n == *f))
        .map(|f| format!("quiver:plugin/hooks.{f}"))
        .collect();
    if !missing.is_empty() {
        return Err(UploadError::MissingExports(missing));
    }
    // Extra functions inside the hooks interface come from a newer world
    // version; they are harmless (never called) and keep minor versions
    // forward compatible.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_classifies_garbage_modules_and_components() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(UploadError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(UploadError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn imports_are_allowed_or_named() {
        assert_eq!(import_refusal("quiver:plugin/kv@0.1.0"), None);
        assert_eq!(import_refusal("wasi:cli/environment@0.2.6"), None);
        assert!(import_refusal("wasi:filesystem/preopens@0.2.6").is_some());
        assert!(import_refusal("wasi:sockets/tcp@0.2.0").is_some());
        assert!(import_refusal("quiver:plugin/hooks@0.1.0").is_some());
        assert!(import_refusal("quiver:plugin/kv@0.2.0").is_some());
        assert!(import_refusal("acme:evil/thing").is_some());
    }
}
