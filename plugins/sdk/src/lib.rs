//! Write Quiver gateway plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`]. Every hook has a default that
//! lets everything through, so a plugin overrides only what it needs and
//! names those hooks in [`export!`]; the gateway calls nothing else.
//!
//! ```ignore
//! use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, export};
//!
//! struct Shout;
//!
//! impl Plugin for Shout {
//!     fn on_publish(_: &SessionInfo, _: &str, message: Message) -> PublishVerdict {
//!         let loud = String::from_utf8_lossy(&message.payload).to_uppercase();
//!         PublishVerdict::Rewrite(Message { payload: loud.into_bytes(), ..message })
//!     }
//! }
//!
//! export!(Shout, hooks: [on_publish]);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (the crate must
//! be a `cdylib`) and upload `target/wasm32-wasip2/release/<name>.wasm`.
//!
//! Host capabilities are in the modules [`kv`], [`channels`], [`log`],
//! [`metrics`], [`clock`] and [`config`]; everything they touch is scoped
//! to the plugin's tenant by the gateway. Files, sockets and environment
//! variables are not available: a plugin using them is refused at upload.

pub mod channels;
pub mod clock;
pub mod config;
pub mod kv;
pub mod log;
pub mod metrics;
mod verdicts;

/// The generated bindings of the `quiver:plugin` world. Plugin code rarely
/// needs them directly; the [`export!`] macro refers to them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "quiver:plugin/plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "quiver_plugin_sdk::bindings",
    });
}

use bindings::exports::quiver::plugin::hooks;

pub use hooks::{
    Admission, Alert, Hook, Message, PluginManifest, Position, PublishVerdict, SessionInfo,
    TrackVerdict,
};

/// A message's headers: `(name, value)` pairs in order.
pub type Headers = Vec<(String, String)>;

/// The hooks of a plugin. Each method is called by the gateway only if its
/// name is listed in [`export!`]; the defaults let everything through.
///
/// The methods take no `self`: a plugin instance is reused across calls
/// (and recycled by the gateway from time to time), so keep state that must
/// survive in [`kv`], and use `static`s (e.g. `OnceLock`) only as caches.
pub trait Plugin {
    /// A client authenticated; `claims` is the verified token's claims as a
    /// JSON object.
    fn on_connect(session: &SessionInfo, claims: &str) -> Admission {
        let _ = (session, claims);
        Admission::Allow
    }

    /// A client asks to subscribe to `channel`.
    fn on_subscribe(session: &SessionInfo, channel: &str) -> Admission {
        let _ = (session, channel);
        Admission::Allow
    }

    /// A client publishes `message` to `channel`.
    fn on_publish(session: &SessionInfo, channel: &str, message: Message) -> PublishVerdict {
        let _ = (session, channel, message);
        PublishVerdict::Accept
    }

    /// A client reports a position on a tracking channel.
    fn on_track(session: &SessionInfo, channel: &str, position: &Position) -> TrackVerdict {
        let _ = (session, channel, position);
        TrackVerdict::Accept
    }
}

/// Names usable in `export!(..., hooks: [...])`. Lower-case on purpose so
/// the list reads like the method names it stands for.
#[doc(hidden)]
#[allow(non_upper_case_globals)]
pub mod hook_names {
    use super::Hook;
    pub const on_connect: Hook = Hook::OnConnect;
    pub const on_subscribe: Hook = Hook::OnSubscribe;
    pub const on_publish: Hook = Hook::OnPublish;
    pub const on_track: Hook = Hook::OnTrack;
}

/// Makes a [`Plugin`] the component's exports.
///
/// `hooks` lists the hooks the plugin implements; it becomes the manifest
/// the gateway reads, and the gateway never calls a hook not listed (a
/// listed hook that the plugin did not override runs the default, which
/// lets everything through). Use it once per crate, at the top level.
///
/// ```ignore
/// quiver_plugin_sdk::export!(RateLimiter, hooks: [on_publish]);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ident, hooks: [$($hook:ident),* $(,)?]) => {
        const _: () = {
            use $crate::bindings::exports::quiver::plugin::hooks as __hooks;

            impl __hooks::Guest for $plugin {
                fn manifest() -> __hooks::PluginManifest {
                    __hooks::PluginManifest {
                        hooks: ::std::vec![$($crate::hook_names::$hook),*],
                    }
                }
                fn on_connect(session: __hooks::SessionInfo, claims: ::std::string::String) -> __hooks::Admission {
                    <$plugin as $crate::Plugin>::on_connect(&session, &claims)
                }
                fn on_subscribe(session: __hooks::SessionInfo, channel: ::std::string::String) -> __hooks::Admission {
                    <$plugin as $crate::Plugin>::on_subscribe(&session, &channel)
                }
                fn on_publish(
                    session: __hooks::SessionInfo,
                    channel: ::std::string::String,
                    payload: ::std::vec::Vec<u8>,
                    headers: $crate::Headers,
                ) -> __hooks::PublishVerdict {
                    <$plugin as $crate::Plugin>::on_publish(
                        &session,
                        &channel,
                        __hooks::Message { payload, headers },
                    )
                }
                fn on_track(
                    session: __hooks::SessionInfo,
                    channel: ::std::string::String,
                    position: __hooks::Position,
                ) -> __hooks::TrackVerdict {
                    <$plugin as $crate::Plugin>::on_track(&session, &channel, &position)
                }
            }

            $crate::bindings::__export_plugin_world!($plugin with_types_in $crate::bindings);
        };
    };
}
