//! The codec's integration tests: one binary, grouped by area.

mod docs;
mod fuzz;
mod malformed;
mod reader;
mod roundtrip;
mod support;
