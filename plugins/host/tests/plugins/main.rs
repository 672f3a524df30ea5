//! Integration tests of the plugin host, one binary grouped by area. Every
//! test uploads real components built from plugins/examples.

#[path = "../support/mod.rs"]
mod support;

mod bad;
mod cache;
mod examples;
mod geofence;
mod isolation;
mod lifecycle;
mod world;
