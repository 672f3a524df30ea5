//! The host side of every capability the plugin world imports, one module
//! each (context struct, view trait, `add_to_linker`), plus the empty WASI
//! subset a Rust standard library needs.

pub(crate) mod channels;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod kv;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod wasi;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::state::PluginState;

/// The one linker every plugin is instantiated with: the allowed WASI
/// subset and the six capabilities, nothing else.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasi::add_to_linker(&mut linker)?;
    kv::add_to_linker(&mut linker)?;
    channels::add_to_linker(&mut linker)?;
    log::add_to_linker(&mut linker)?;
    metrics::add_to_linker(&mut linker)?;
    clock::add_to_linker(&mut linker)?;
    config::add_to_linker(&mut linker)?;
    Ok(linker)
}
