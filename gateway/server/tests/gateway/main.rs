//! Gateway integration tests: real servers on loopback, real QUIC clients,
//! real storage. Grouped by area, one binary.

// Helpers are `pub` for the sibling modules of this test crate.
#![allow(unreachable_pub)]

mod bad_input;
mod chat;
mod cli;
mod durability;
mod feeds;
mod http_api;
mod ops;
mod plugins;
mod presence;
mod raw;
mod resume;
#[cfg(feature = "cql-tests")]
mod scylla;
mod support;
mod tenants;
mod tracking;
