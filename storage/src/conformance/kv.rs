//! [`KeyValueStore`]: scoping, expiry, atomic increments and limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::fresh_tenant;
use crate::{KeyValueStore, KvScope, MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES, StoreError};

async fn get<S: KeyValueStore>(store: &S, scope: &KvScope, key: &str) -> Option<Bytes> {
    store
        .kv_get(scope, key)
        .await
        .unwrap_or_else(|e| panic!("kv_get {key}: {e}"))
}

async fn set<S: KeyValueStore>(store: &S, scope: &KvScope, key: &str, value: &str) {
    store
        .kv_set(scope, key, Bytes::from(value.to_owned()), None)
        .await
        .unwrap_or_else(|e| panic!("kv_set {key}: {e}"));
}

/// Set, get, overwrite and delete; a key of one plugin is invisible to
/// another plugin of the tenant and to the same plugin of another tenant.
pub async fn kv_is_scoped_by_tenant_and_namespace<S: KeyValueStore>(store: S) {
    let tenant = fresh_tenant("kv-scope");
    let mine = KvScope::new(tenant.as_str(), "plugin-a");
    let sibling = KvScope::new(tenant.as_str(), "plugin-b");
    let stranger = KvScope::new(format!("{tenant}-x"), "plugin-a");

    assert_eq!(get(&store, &mine, "k").await, None);
    set(&store, &mine, "k", "v1").await;
    assert_eq!(get(&store, &mine, "k").await.as_deref(), Some(&b"v1"[..]));
    for other in [&sibling, &stranger] {
        assert_eq!(get(&store, other, "k").await, None, "{other:?} sees it");
        assert!(!store.kv_delete(other, "k").await.expect("delete"));
    }
    set(&store, &sibling, "k", "theirs").await;
    set(&store, &mine, "k", "v2").await;
    assert_eq!(get(&store, &mine, "k").await.as_deref(), Some(&b"v2"[..]));
    assert_eq!(
        get(&store, &sibling, "k").await.as_deref(),
        Some(&b"theirs"[..])
    );

    assert!(store.kv_delete(&mine, "k").await.expect("delete"));
    assert!(!store.kv_delete(&mine, "k").await.expect("delete again"));
    assert_eq!(get(&store, &mine, "k").await, None);
    assert_eq!(
        get(&store, &sibling, "k").await.as_deref(),
        Some(&b"theirs"[..])
    );
    // Empty values are values, not deletions.
    store
        .kv_set(&mine, "empty", Bytes::new(), None)
        .await
        .expect("set empty");
    assert_eq!(get(&store, &mine, "empty").await, Some(Bytes::new()));
}

/// A key whose TTL passed reads as absent, for set and for increment; a
/// key set again without a TTL no longer expires.
pub async fn kv_ttl_expires<S: KeyValueStore>(store: S) {
    let scope = KvScope::new(fresh_tenant("kv-ttl"), "p");
    // Whole seconds: CQL TTLs have one-second resolution.
    let ttl = Some(Duration::from_secs(1));
    store
        .kv_set(&scope, "short", Bytes::from_static(b"x"), ttl)
        .await
        .expect("set");
    store
        .kv_increment(&scope, "count", 5, ttl)
        .await
        .expect("incr");
    store
        .kv_set(&scope, "kept", Bytes::from_static(b"y"), ttl)
        .await
        .expect("set");
    set(&store, &scope, "kept", "z").await;
    assert_eq!(
        get(&store, &scope, "short").await.as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        get(&store, &scope, "count").await.as_deref(),
        Some(&b"5"[..])
    );

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        get(&store, &scope, "short").await,
        None,
        "expired value still read"
    );
    assert_eq!(
        get(&store, &scope, "count").await,
        None,
        "expired counter still read"
    );
    assert_eq!(
        get(&store, &scope, "kept").await.as_deref(),
        Some(&b"z"[..])
    );
    assert!(!store.kv_delete(&scope, "short").await.expect("delete"));
    // An expired counter counts from 0 again.
    assert_eq!(
        store.kv_increment(&scope, "count", 2, None).await.ok(),
        Some(2)
    );
}

/// 16 tasks x 100 increments of one key end at exactly 1600, and every
/// returned value is distinct (no two increments saw the same state).
pub async fn kv_concurrent_increments_are_exact<S: KeyValueStore>(store: S) {
    const TASKS: i64 = 16;
    const EACH: i64 = 100;
    let store = Arc::new(store);
    let scope = KvScope::new(fresh_tenant("kv-incr"), "p");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, scope) = (Arc::clone(&store), scope.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..EACH {
                let value = store
                    .kv_increment(&scope, "hits", 1, None)
                    .await
                    .unwrap_or_else(|e| panic!("increment: {e}"));
                seen.push(value);
            }
            seen
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=TASKS * EACH).collect::<Vec<_>>(),
        "lost or repeated increments"
    );
    let text = get(&*store, &scope, "hits").await;
    assert_eq!(
        text.as_deref(),
        Some(format!("{}", TASKS * EACH).as_bytes())
    );
    assert_eq!(
        store.kv_increment(&scope, "hits", -1600, None).await.ok(),
        Some(0)
    );
}

/// Keys and values outside the limits, empty names, and increments of
/// non-numbers or past i64 are `Invalid`.
pub async fn kv_rejects_invalid_input<S: KeyValueStore>(store: S) {
    let tenant = fresh_tenant("kv-invalid");
    let scope = KvScope::new(tenant.as_str(), "p");
    let invalid = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{what}: {r:?}");
    };
    let v = || Bytes::from_static(b"v");
    invalid(store.kv_set(&scope, "", v(), None).await, "empty key");
    let long = "k".repeat(MAX_KV_KEY_BYTES + 1);
    invalid(store.kv_set(&scope, &long, v(), None).await, "long key");
    invalid(store.kv_get(&scope, &long).await.map(drop), "long key get");
    let big = Bytes::from(vec![0u8; MAX_KV_VALUE_BYTES + 1]);
    invalid(store.kv_set(&scope, "k", big, None).await, "big value");
    for bad in [KvScope::new("", "p"), KvScope::new(tenant.as_str(), "")] {
        invalid(store.kv_set(&bad, "k", v(), None).await, "empty scope");
    }
    let ok_key = "k".repeat(MAX_KV_KEY_BYTES);
    let max = Bytes::from(vec![7u8; MAX_KV_VALUE_BYTES]);
    store
        .kv_set(&scope, &ok_key, max.clone(), None)
        .await
        .expect("limits are inclusive");
    assert_eq!(get(&store, &scope, &ok_key).await, Some(max));

    set(&store, &scope, "word", "abc").await;
    invalid(
        store.kv_increment(&scope, "word", 1, None).await.map(drop),
        "text",
    );
    assert_eq!(
        get(&store, &scope, "word").await.as_deref(),
        Some(&b"abc"[..])
    );
    set(&store, &scope, "n", &i64::MAX.to_string()).await;
    invalid(
        store.kv_increment(&scope, "n", 1, None).await.map(drop),
        "overflow",
    );
    set(&store, &scope, "n", "-4").await;
    assert_eq!(
        store.kv_increment(&scope, "n", 10, None).await.ok(),
        Some(6)
    );
}
