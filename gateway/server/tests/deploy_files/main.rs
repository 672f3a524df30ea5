//! Checks of the deployment files in `deploy/`. The machines that run the
//! tests have no Docker engine, systemd or Prometheus, so this is what keeps
//! those files true to the gateway:
//! - every metric the Grafana dashboard and the alert rules query is one a
//!   real gateway exports, scraped from a gateway running in this process
//!   (`live`, reading the queries with `promql`);
//! - every alert has a severity and its annotations, and the dashboard is
//!   well formed (`structure`);
//! - the compose gateway config is a valid `Config`, and ports, paths and
//!   stop timeouts agree between the config, the Dockerfile, compose, the
//!   systemd unit and the Prometheus config (`files`).

// Helpers are `pub` for the sibling modules of this test crate.
#![allow(unreachable_pub)]

mod files;
mod live;
mod promql;
mod structure;
mod support;

#[path = "../../../../plugins/host/tests/support/build.rs"]
mod build;
