//! The conformance suite every backend must pass: [`MessageLog`],
//! [`KeyValueStore`](crate::KeyValueStore) and
//! [`PluginRegistry`](crate::PluginRegistry).
//!
//! Each case is a public `async fn` that takes a fresh store, so a backend's
//! test binary can run them one per `#[test]`, or all at once with
//! [`run_all`]. Durability needs reopening the same storage, so it has its
//! own entry point, [`reopen_keeps_acked`], taking a factory that opens the
//! same underlying data each time it is called.
//!
//! Cases panic with a message on failure, like any test. They run on a
//! tokio runtime (a multi-threaded one exercises more interleavings). Every
//! case writes under tenants unique to the process and case, so backends
//! whose "fresh" stores share one database (ScyllaDB) also pass.
//!
//! ```no_run
//! # async fn demo() {
//! use quiver_storage::conformance;
//! use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};
//!
//! let root = tempfile::tempdir().unwrap();
//! let n = std::sync::atomic::AtomicUsize::new(0);
//! conformance::run_all(|| {
//!     let path = root.path().join(n.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string());
//!     async move { EmbeddedStore::open(EmbeddedConfig::new(path)).unwrap() }
//! })
//! .await;
//! # }
//! ```

mod durability;
mod idempotency;
mod kv;
mod ordering;
pub mod proxy;
mod reads;
mod registry;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::{
    Appended, ChannelKey, MessageId, MessageLog, NewMessage, ReadRange, Store, StoredMessage,
};

pub use durability::reopen_keeps_acked;
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
pub use reads::{
    fields_round_trip, head_tracks_last_offset, large_payloads_round_trip,
    paging_returns_every_message_once,
};
pub use registry::{
    registry_activate_and_rollback, registry_active_plugins_across_tenants,
    registry_delete_keeps_numbering, registry_large_component_round_trips,
    registry_numbers_versions,
};

/// Runs every case that needs only a fresh store, each on a new store from
/// `make`. Prints each case's name to stderr first, so a failure is easy
/// to place.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            eprintln!("conformance: {}", stringify!($case));
            $case(make().await).await;
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
