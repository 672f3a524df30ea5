//! The one place that generates host bindings from `wit/` (the same
//! package the SDK is generated from, so the two cannot drift).
//!
//! Every capability import is `async` (the key-value store and channel
//! publishing await storage) and every export is called asynchronously, so
//! a guest waiting on storage parks its fiber instead of a runtime thread.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "quiver:plugin/plugin",
    imports: { default: async },
    exports: { default: async },
    ownership: Borrowing { duplicate_if_necessary: true },
});
