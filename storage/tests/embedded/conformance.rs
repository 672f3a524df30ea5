//! The backend conformance suite, run against `EmbeddedStore`.

use quiver_storage::conformance;

use super::open;

// One test per case, each on a store in its own tempdir, so a failure
// names its case.
quiver_storage::conformance_tests! {
    let dir = tempfile::tempdir().expect("tempdir");
    => open(dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::reopen_keeps_acked(|| async { open(dir.path()) }).await;
}
