//! The conformance suite every backend must pass: [`MessageLog`] (edits
//! included), [`KeyValueStore`](crate::KeyValueStore),
//! [`PluginRegistry`](crate::PluginRegistry) and
//! [`PositionStore`](crate::PositionStore).
//!
//! Each case is a public `async fn` that takes a fresh store. A backend's
//! test binary runs them all, one `#[tokio::test]` per case, with
//! [`conformance_tests!`](crate::conformance_tests), the one list of the
//! cases. Durability needs reopening the same storage, so it has its own
//! entry point, [`reopen_keeps_acked`], taking a factory that opens the
//! same underlying data each time it is called.
//!
//! Cases panic with a message on failure, like any test. They run on a
//! tokio runtime (a multi-threaded one exercises more interleavings). Every
//! case writes under tenants unique to the process and case, so backends
//! whose "fresh" stores share one database (ScyllaDB) also pass.
//!
//! ```no_run
//! use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};
//!
//! // In a test crate (which depends on tokio): one test per case, each on
//! // a store in its own temporary directory.
//! quiver_storage::conformance_tests! {
//!     let dir = tempfile::tempdir().unwrap();
//!     => EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap()
//! }
//! # fn main() {}
//! ```

mod durability;
mod edits;
mod idempotency;
mod kv;
mod ordering;
mod positions;
pub mod proxy;
mod reads;
mod registry;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::{Appended, ChannelKey, MessageId, MessageLog, NewMessage, ReadRange, StoredMessage};

pub use durability::reopen_keeps_acked;
pub use edits::{
    duplicate_edit_writes_nothing, edit_delete_empties_target,
    edit_of_missing_target_changes_nothing, edit_update_rewrites_target, edits_are_tenant_isolated,
    update_after_delete_stays_deleted,
};
pub use idempotency::{
    duplicate_within_one_batch, idempotency_is_scoped_to_channel_and_tenant,
    retry_with_same_key_returns_original,
};
pub use kv::{
    kv_concurrent_increments_are_exact, kv_is_scoped_by_tenant_and_namespace,
    kv_rejects_invalid_input, kv_ttl_expires,
};
pub use ordering::{
    channels_are_independent, concurrent_appends_are_gap_free,
    offsets_start_at_one_and_are_contiguous, rejects_invalid_names, tenants_are_isolated,
};
pub use positions::{
    positions_are_scoped_by_channel_and_tenant, positions_history_expires,
    positions_history_newest_first, positions_latest_keeps_newest, positions_reject_invalid_input,
};
pub use reads::{
    fields_round_trip, head_tracks_last_offset, large_payloads_round_trip,
    paging_returns_every_message_once,
};
pub use registry::{
    registry_activate_and_rollback, registry_active_plugins_across_tenants,
    registry_delete_keeps_numbering, registry_large_component_round_trips,
    registry_numbers_versions,
};

/// One `#[tokio::test]` (multi-threaded, 2 workers) per case that needs
/// only a fresh store, each named after its case so a failure names it.
/// This is the one list of those cases.
///
/// The argument is an expression for a fresh store, evaluated in each
/// test's async body (so it may `.await`), optionally after `let`
/// statements whose bindings live as long as the test, such as the
/// temporary directory the store is in:
///
/// ```text
/// conformance_tests!(connect("conformance").await);
/// conformance_tests! {
///     let dir = tempfile::tempdir().expect("tempdir");
///     => open(dir.path())
/// }
/// ```
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
#[macro_export]
macro_rules! conformance_tests {
    (@case $case:ident [$(let $pat:pat = $init:expr;)*] $store:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            $(let $pat = $init;)*
            $crate::conformance::$case($store).await;
        }
    };
    (@cases $setup:tt $store:expr; $($case:ident),* $(,)?) => {$(
        $crate::conformance_tests!(@case $case $setup $store);
    )*};
    (@list $setup:tt $store:expr) => {
        $crate::conformance_tests!(@cases $setup $store;
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
            edit_update_rewrites_target,
            edit_delete_empties_target,
            duplicate_edit_writes_nothing,
            edit_of_missing_target_changes_nothing,
            update_after_delete_stays_deleted,
            edits_are_tenant_isolated,
            kv_is_scoped_by_tenant_and_namespace,
            kv_ttl_expires,
            kv_concurrent_increments_are_exact,
            kv_rejects_invalid_input,
            registry_numbers_versions,
            registry_activate_and_rollback,
            registry_delete_keeps_numbering,
            registry_active_plugins_across_tenants,
            registry_large_component_round_trips,
            positions_latest_keeps_newest,
            positions_are_scoped_by_channel_and_tenant,
            positions_history_newest_first,
            positions_history_expires,
            positions_reject_invalid_input,
        );
    };
    ($(let $pat:pat = $init:expr;)+ => $store:expr) => {
        $crate::conformance_tests!(@list [$(let $pat = $init;)+] $store);
    };
    ($store:expr) => {
        $crate::conformance_tests!(@list [] $store);
    };
}

/// The `host:port` of the CQL node the database tests run against, from
/// `QUIVER_CQL_NODE`; panics, saying how to start one, when it is not set
/// (a skipped database test would look like a passing one) or not an
/// `ip:port`.
pub fn cql_node() -> SocketAddr {
    let node = std::env::var("QUIVER_CQL_NODE").unwrap_or_default();
    if node.is_empty() {
        panic!(
            "QUIVER_CQL_NODE is not set. These tests need a CQL node: run \
             `deploy/cql-node.sh start` and set QUIVER_CQL_NODE to the host:port it prints \
             (e.g. QUIVER_CQL_NODE=127.0.0.1:9042)"
        );
    }
    node.parse()
        .unwrap_or_else(|e| panic!("QUIVER_CQL_NODE={node}: {e}"))
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A tenant name no other case (or earlier run, for shared databases) uses.
fn fresh_tenant(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{label}-{}-{nanos:x}-{}", std::process::id(), next())
}

/// A message on `channel` whose id and payload are unique in the process.
fn message(channel: &ChannelKey) -> NewMessage {
    let n = next();
    NewMessage {
        channel: channel.clone(),
        id: MessageId((1u128 << 100) | u128::from(n)),
        timestamp_ms: 1_700_000_000_000 + n,
        sender: "conformance".into(),
        payload: Bytes::from(format!("payload-{n}")),
        headers: Vec::new(),
        idempotency_key: None,
        edit: None,
    }
}

fn keyed(channel: &ChannelKey, key: &str) -> NewMessage {
    NewMessage {
        idempotency_key: Some(key.into()),
        ..message(channel)
    }
}

async fn append_ok<S: MessageLog>(store: &S, batch: Vec<NewMessage>) -> Vec<Appended> {
    let len = batch.len();
    let out = store
        .append(batch)
        .await
        .unwrap_or_else(|e| panic!("append failed: {e}"));
    assert_eq!(out.len(), len, "append must return one outcome per message");
    out
}

/// Every message of `channel`, oldest first.
async fn read_all<S: MessageLog>(store: &S, channel: &ChannelKey) -> Vec<StoredMessage> {
    store
        .read(channel, ReadRange::forward_after(0, usize::MAX))
        .await
        .unwrap_or_else(|e| panic!("read failed: {e}"))
}

fn offsets(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}
