//! The backend conformance suite, run against `EmbeddedStore`.

use quiver_storage::conformance;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::open;

/// A new, unused data directory under `root`.
fn fresh_dir(root: &Path) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    root.join(format!("store-{}", N.fetch_add(1, Ordering::Relaxed)))
}

/// One `#[tokio::test]` per case, each on a store in its own tempdir, so a
/// failure names its case.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let dir = tempfile::tempdir().expect("tempdir");
            conformance::$case(open(dir.path())).await;
        }
    )*};
}

cases!(
    offsets_start_at_one_and_are_contiguous,
    concurrent_appends_are_gap_free,
    channels_are_independent,
    tenants_are_isolated,
    rejects_invalid_names,
    retry_with_same_key_returns_original,
    idempotency_is_scoped_to_channel_and_tenant,
    duplicate_within_one_batch,
    paging_returns_every_message_once,
    head_tracks_last_offset,
    fields_round_trip,
    large_payloads_round_trip,
    kv_is_scoped_by_tenant_and_namespace,
    kv_ttl_expires,
    kv_concurrent_increments_are_exact,
    kv_rejects_invalid_input,
    registry_numbers_versions,
    registry_activate_and_rollback,
    registry_delete_keeps_numbering,
    registry_active_plugins_across_tenants,
    registry_large_component_round_trips,
);

/// `run_all` itself, as another backend would call it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_fresh_stores() {
    let root = tempfile::tempdir().expect("tempdir");
    conformance::run_all(|| {
        let path = fresh_dir(root.path());
        async move { open(&path) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::reopen_keeps_acked(|| async { open(dir.path()) }).await;
}
