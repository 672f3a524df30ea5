//! quiver-load: load generator and benchmarks for Quiver, built on
//! `quiver-client` so it measures what applications get.
//!
//! The binary (`src/main.rs`) is a thin clap front end; everything here is
//! a library:
//!
//! - [`common`]: flags every scenario shares and the run's timeline;
//! - [`clients`]: many clients spread over a few UDP sockets;
//! - [`tokens`]: one JWT per simulated user;
//! - [`payload`]: the timing header every load message carries;
//! - [`stats`]: HDR latency histograms; [`offsets`]: the gap/duplicate check;
//! - [`live`] and [`progress`]: live counters, the progress bar and the
//!   per-second series;
//! - [`report`], [`html`] and [`machine`]: the printed table, the JSON file
//!   and the HTML report;
//! - [`memory`]: the server's resident memory (from /proc or /metrics);
//! - [`scenario_file`]: TOML scenario files (`quiver-load run FILE`);
//! - [`scenarios`]: one module per scenario;
//! - [`floor`]: the bare-quinn floor server and its thin clients;
//! - [`bench`]: runs a scenario against a gateway and the floor it starts.

pub mod bench;
pub mod clients;
pub mod common;
pub mod floor;
pub mod html;
pub mod live;
pub mod machine;
pub mod memory;
pub mod offsets;
pub mod payload;
pub mod progress;
pub mod report;
pub mod scenario_file;
pub mod scenarios;
pub mod stats;
pub mod tokens;
