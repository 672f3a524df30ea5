//! The backend conformance suite, run against `ScyllaStore` on a real node.

use quiver_storage::conformance;

use super::connect;

// One test per case, each on a new store (a new session; the keyspace is
// shared and the cases use unique tenants).
quiver_storage::conformance_tests!(connect("conformance").await);

/// A reopen is a new session of the same node id; the first store is
/// dropped without releasing its leases, so the second waits for them to
/// expire (2 s in these tests) before it continues the channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_acked() {
    conformance::reopen_keeps_acked(|| connect("reopen")).await;
}
