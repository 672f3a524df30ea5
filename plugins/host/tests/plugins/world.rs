//! The components the SDK produces fit the world, and the guide shows
//! real, tested code.

/// What a Rust wasm32-wasip2 std build imports: WASI cli/io (and at most
/// clocks/random), never filesystem or sockets unless the plugin uses
/// them. Printed with `--nocapture` for reference.
#[test]
fn example_components_import_only_std_wasi_and_capabilities() {
    let engine = wasmtime::Engine::default();
    for example in [
        "profanity-filter",
        "rate-limiter",
        "join-policy",
        "enricher",
    ] {
        let component =
            wasmtime::component::Component::new(&engine, crate::support::wasm(example)).unwrap();
        let ty = component.component_type();
        let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
        println!("{example}: {}", imports.join(" "));
        for name in imports {
            assert!(
                name.starts_with("quiver:plugin/")
                    || name.starts_with("wasi:cli/")
                    || name.starts_with("wasi:io/")
                    || name.starts_with("wasi:clocks/")
                    || name.starts_with("wasi:random/"),
                "{example} imports {name}"
            );
        }
    }
}

/// docs/PLUGINS.md shows the enricher's source verbatim; this keeps the
/// guide's example the code the suite builds and runs.
#[test]
fn plugins_guide_embeds_the_tested_enricher_source() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/PLUGINS.md")).unwrap();
    let source =
        std::fs::read_to_string(root.join("plugins/examples/enricher/src/lib.rs")).unwrap();
    assert!(
        guide.contains(&format!("```rust\n{source}```")),
        "docs/PLUGINS.md must contain plugins/examples/enricher/src/lib.rs verbatim in a rust block"
    );
}
