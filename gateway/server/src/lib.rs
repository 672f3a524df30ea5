//! The Quiver gateway. The `quiver` binary (src/main.rs) is a thin CLI over
//! this library; tests use the library directly to run servers on port 0.
//!
//! A newcomer's map:
//! - [`server`]: binds listeners and runs the accept loop and shutdown;
//! - [`quic`]: the QUIC transport adapter (bytes in, bytes out);
//! - [`connection`]: drives one client's session, transport-agnostic;
//! - [`pipeline`]: group-commits publishes to the store, acks, fans out;
//! - [`hub`] and [`delivery`]: per-channel fan-out and ordered delivery;
//! - [`presence`]: who is subscribed to which channel, join and leave events;
//! - [`tracking`]: latest positions on tracking channels, coalesced fan-out,
//!   write-behind persistence;
//! - [`ops`] and [`metrics`]: health, readiness and Prometheus metrics;
//! - [`api`]: the HTTP API (plugin administration);
//! - [`hooks`] and [`plugins`]: tenant plugins on connect, subscribe, publish;
//! - [`config`], [`tenants`], [`tls`], [`setup`]: turning files into a running server.

pub mod api;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod hooks;
pub mod hub;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod plugins;
pub mod presence;
pub mod quic;
pub mod server;
pub mod setup;
pub mod tenants;
pub mod tls;
pub mod tracking;

pub use server::{Gateway, GatewayConfig};
