//! The backend conformance suite, run against `ScyllaStore` on a real node.

use quiver_storage::conformance;

use super::connect;

/// One `#[tokio::test]` per case, each on a new store (a new session; the
/// keyspace is shared and the cases use unique tenants).
macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            conformance::$case(connect("conformance").await).await;
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

/// A reopen is a new session of the same node id; the first store is
/// dropped without releasing its leases, so the second waits for them to
/// expire (2 s in these tests) before it continues the channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_acked() {
    conformance::reopen_keeps_acked(|| connect("reopen")).await;
}
