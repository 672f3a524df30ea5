//! quiver-load: load generator and benchmarks for Quiver, built on
//! `quiver-client` so it measures what applications get.
//!
//! The binary (`src/main.rs`) is a thin clap front end; everything here is
//! a library so future scenarios (chat, connections, reconnect storms) and
//! report formats reuse the same pieces:
//!
//! - [`common`]: flags every scenario shares and the run's timeline;
//! - [`clients`]: many clients spread over a few UDP sockets;
//! - [`tokens`]: one JWT per simulated user;
//! - [`payload`]: the timing header every load message carries;
//! - [`stats`]: HDR latency histograms; [`offsets`]: the gap/duplicate check;
//! - [`report`]: the printed table and the JSON file;
//! - [`scenarios`]: one module per scenario.

pub mod clients;
pub mod common;
pub mod offsets;
pub mod payload;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod tokens;
