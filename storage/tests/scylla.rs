//! The ScyllaDB backend against a real CQL node, one binary grouped by area:
//! - `conformance`: the shared backend suite, one test per case;
//! - `buckets`: a channel crossing a partition boundary;
//! - `nodes`: several gateway nodes on one channel (lease handover, fencing);
//! - `throughput`: a rough measurement, ignored unless asked for;
//! - `upgrade`: a keyspace of the previous schema is upgraded in place.
//!
//! Needs a node: `deploy/cql-node.sh start` prints its `host:port`; run
//! `QUIVER_CQL_NODE=127.0.0.1:9042 cargo test -p quiver-storage --features cql-tests`.
//! Without `QUIVER_CQL_NODE` every test here fails and says so: a skipped
//! database test would look like a passing one.
#![cfg(feature = "cql-tests")]

#[path = "scylla/buckets.rs"]
mod buckets;
#[path = "scylla/conformance.rs"]
mod conformance;
#[path = "scylla/nodes.rs"]
mod nodes;
#[path = "scylla/throughput.rs"]
mod throughput;
#[path = "scylla/upgrade.rs"]
mod upgrade;

use std::time::Duration;

use quiver_storage::conformance::cql_node;
use quiver_storage::scylla::{ScyllaConfig, ScyllaStore};

/// Keyspace of these tests; cases use unique tenants, so runs can share it.
const KEYSPACE: &str = "quiver_test";

/// A config for the test node as gateway node `node_id`, with short leases
/// so handovers happen within a test.
fn config(node_id: &str) -> ScyllaConfig {
    ScyllaConfig::from_url(&format!("scylla://{}/{KEYSPACE}", cql_node()))
        .unwrap_or_else(|e| panic!("config: {e}"))
        .node_id(node_id)
        .lease(Duration::from_secs(2), Duration::from_millis(200))
}

async fn connect(node_id: &str) -> ScyllaStore {
    ScyllaStore::connect(config(node_id))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", cql_node()))
}
