//! [`PluginRegistry`]: version numbering, activation, rollback, deletion
//! and isolation between tenants.

use bytes::Bytes;

use super::fresh_tenant;
use crate::{PluginRegistry, PluginVersionMeta, StoreError};

/// Uploads `component` as the next version of `name`.
async fn upload<S: PluginRegistry>(
    store: &S,
    tenant: &str,
    name: &str,
    component: &[u8],
) -> PluginVersionMeta {
    let sha = format!("{:064x}", component.len());
    store
        .put_version(
            tenant,
            name,
            Bytes::copy_from_slice(component),
            &sha,
            "{\"k\":1}",
            42,
        )
        .await
        .unwrap_or_else(|e| panic!("put_version {tenant}/{name}: {e}"))
}

/// Versions count from 1 per name, uploads do not activate, and metadata
/// and bytes round trip.
pub async fn registry_numbers_versions<S: PluginRegistry>(store: S) {
    let tenant = fresh_tenant("reg-versions");
    let v1 = upload(&store, &tenant, "echo", b"one").await;
    let v2 = upload(&store, &tenant, "echo", b"two!").await;
    let other = upload(&store, &tenant, "other", b"x").await;
    assert_eq!((v1.version, v2.version, other.version), (1, 2, 1));
    assert_eq!(
        (v2.size_bytes, v2.config.as_str(), v2.uploaded_ms),
        (4, "{\"k\":1}", 42)
    );

    let record = store
        .plugin(&tenant, "echo")
        .await
        .expect("plugin")
        .expect("exists");
    assert_eq!(
        record.versions,
        vec![v1.clone(), v2.clone()],
        "oldest first"
    );
    assert_eq!(
        (record.active, record.previous),
        (None, None),
        "uploads must not activate"
    );
    let got = store
        .get_version(&tenant, "echo", 2)
        .await
        .expect("get")
        .expect("v2");
    assert_eq!((got.meta, &got.component[..]), (v2, &b"two!"[..]));
    assert!(
        store
            .get_version(&tenant, "echo", 3)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .plugin(&tenant, "nope")
            .await
            .expect("plugin")
            .is_none()
    );
    let mut names: Vec<_> = store
        .list_plugins(&tenant)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["echo", "other"]);
}

/// Activate remembers the replaced version as `previous`; rollback swaps
/// the two; unknown versions and missing previous versions are `Invalid`.
pub async fn registry_activate_and_rollback<S: PluginRegistry>(store: S) {
    let tenant = fresh_tenant("reg-activate");
    for body in [b"a", b"b", b"c"] {
        upload(&store, &tenant, "p", body).await;
    }
    let state = async |store: &S| {
        let r = store
            .plugin(&tenant, "p")
            .await
            .expect("plugin")
            .expect("exists");
        (r.active, r.previous)
    };
    let invalid = |r: Result<u32, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    assert!(
        invalid(store.rollback(&tenant, "p").await),
        "rollback with nothing active"
    );
    assert!(
        invalid(store.activate(&tenant, "p", 9).await.map(|()| 0)),
        "unknown version"
    );
    assert!(
        invalid(store.activate(&tenant, "nope", 1).await.map(|()| 0)),
        "unknown plugin"
    );

    store.activate(&tenant, "p", 1).await.expect("activate 1");
    assert_eq!(state(&store).await, (Some(1), None));
    assert!(
        invalid(store.rollback(&tenant, "p").await),
        "no previous yet"
    );
    store.activate(&tenant, "p", 3).await.expect("activate 3");
    assert_eq!(state(&store).await, (Some(3), Some(1)));
    assert_eq!(store.rollback(&tenant, "p").await.ok(), Some(1));
    assert_eq!(state(&store).await, (Some(1), Some(3)));
    assert_eq!(store.rollback(&tenant, "p").await.ok(), Some(3));
    assert_eq!(state(&store).await, (Some(3), Some(1)));
    store.activate(&tenant, "p", 2).await.expect("activate 2");
    assert_eq!(state(&store).await, (Some(2), Some(3)));
}

/// Deleting removes every version; a re-upload continues the numbering.
pub async fn registry_delete_keeps_numbering<S: PluginRegistry>(store: S) {
    let tenant = fresh_tenant("reg-delete");
    upload(&store, &tenant, "p", b"1").await;
    upload(&store, &tenant, "p", b"2").await;
    store.activate(&tenant, "p", 2).await.expect("activate");
    assert!(store.delete_plugin(&tenant, "p").await.expect("delete"));
    assert!(
        !store
            .delete_plugin(&tenant, "p")
            .await
            .expect("delete again")
    );
    assert!(store.plugin(&tenant, "p").await.expect("plugin").is_none());
    assert!(
        store
            .get_version(&tenant, "p", 2)
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.list_plugins(&tenant).await.expect("list").is_empty());

    let again = upload(&store, &tenant, "p", b"3").await;
    assert_eq!(
        again.version, 3,
        "version numbers must not be reused after delete"
    );
    let record = store
        .plugin(&tenant, "p")
        .await
        .expect("plugin")
        .expect("exists");
    assert_eq!(record.versions.len(), 1);
    assert_eq!((record.active, record.previous), (None, None));
}

/// `active_plugins` lists active plugins of every tenant and nothing else;
/// each tenant sees only its own plugins.
pub async fn registry_active_plugins_across_tenants<S: PluginRegistry>(store: S) {
    let (a, b) = (fresh_tenant("reg-a"), fresh_tenant("reg-b"));
    upload(&store, &a, "shared-name", b"a").await;
    upload(&store, &b, "shared-name", b"b").await;
    upload(&store, &b, "inactive", b"b").await;
    store
        .activate(&a, "shared-name", 1)
        .await
        .expect("activate a");
    store
        .activate(&b, "shared-name", 1)
        .await
        .expect("activate b");

    let active: Vec<_> = store
        .active_plugins()
        .await
        .expect("active_plugins")
        .into_iter()
        .filter(|r| *r.tenant == *a || *r.tenant == *b)
        .map(|r| (r.tenant.to_string(), r.name.to_string(), r.active))
        .collect();
    let mut expected = vec![
        (a.clone(), "shared-name".to_owned(), Some(1)),
        (b.clone(), "shared-name".to_owned(), Some(1)),
    ];
    let mut active = active;
    active.sort();
    expected.sort();
    assert_eq!(active, expected);
    assert_eq!(store.list_plugins(&a).await.expect("list").len(), 1);
    assert_eq!(store.list_plugins(&b).await.expect("list").len(), 2);
    let theirs = store.get_version(&a, "inactive", 1).await.expect("get");
    assert!(theirs.is_none(), "tenant a must not see tenant b's plugin");
    assert!(matches!(
        store.put_version("", "p", Bytes::new(), "", "", 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .put_version(&a, &"n".repeat(65), Bytes::new(), "", "", 0)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

/// A 10 MiB component round trips byte for byte.
pub async fn registry_large_component_round_trips<S: PluginRegistry>(store: S) {
    let tenant = fresh_tenant("reg-large");
    let component: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let meta = upload(&store, &tenant, "big", &component).await;
    assert_eq!(meta.size_bytes, component.len() as u64);
    let got = store
        .get_version(&tenant, "big", meta.version)
        .await
        .expect("get")
        .expect("some");
    assert!(got.component == component, "component bytes differ");
}
