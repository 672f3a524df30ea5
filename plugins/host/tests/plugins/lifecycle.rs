//! Upload, hot swap, rollback, activate, list, delete and upload limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use quiver_plugin_host::{PublishVerdict, UploadError};

use crate::support::{Harness, session, wasm};

/// The sender header a publish came back with (the enricher's config
/// names it, so it tells which version ran).
async fn sender_header(h: &Harness) -> String {
    match h.publish(&session("acme", "u"), "c", b"x").await {
        PublishVerdict::Accept { headers, .. } => headers[0].0.clone(),
        other => panic!("call failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_fails_no_call_and_the_next_call_sees_the_new_version() {
    let h = Arc::new(Harness::new().await);
    h.install_enricher("acme", "enrich", "x-v1").await;

    let stop = Arc::new(AtomicBool::new(false));
    let (v1, v2, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (h, stop, v1, v2, failed) = (
            h.clone(),
            stop.clone(),
            v1.clone(),
            v2.clone(),
            failed.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match h.publish(&session("acme", "u"), "c", b"x").await {
                    PublishVerdict::Accept { headers, .. } if headers[0].0 == "x-v1" => {
                        v1.fetch_add(1, Ordering::Relaxed)
                    }
                    PublishVerdict::Accept { headers, .. } if headers[0].0 == "x-v2" => {
                        v2.fetch_add(1, Ordering::Relaxed)
                    }
                    other => {
                        eprintln!("failed call during swap: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::task::yield_now().await;
            }
        }));
    }
    while v1.load(Ordering::Relaxed) < 200 {
        tokio::task::yield_now().await;
    }
    let version = h.install_enricher("acme", "enrich", "x-v2").await;
    assert_eq!(version, 2);
    // The very next call runs the new version.
    assert_eq!(sender_header(&h).await, "x-v2");
    let seen = v2.load(Ordering::Relaxed);
    while v2.load(Ordering::Relaxed) < seen + 200 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no call may fail during a swap"
    );
}

#[tokio::test]
async fn rollback_activate_list_and_delete() {
    let h = Harness::new().await;
    h.install_enricher("acme", "enrich", "x-v1").await;
    h.install_enricher("acme", "enrich", "x-v2").await;
    assert_eq!(sender_header(&h).await, "x-v2");

    assert_eq!(h.host.rollback("acme", "enrich").await.unwrap(), 1);
    assert_eq!(sender_header(&h).await, "x-v1");
    assert_eq!(h.host.active_version("acme", "enrich"), Some(1));

    let list = h.host.list("acme").await.unwrap();
    assert_eq!(list.len(), 1);
    let record = &list[0];
    assert_eq!(
        record
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!((record.active, record.previous), (Some(1), Some(2)));
    assert_eq!(
        record.versions[0].sha256, record.versions[1].sha256,
        "same bytes, two configs"
    );
    assert_eq!(record.versions[0].sha256.len(), 64);

    h.host.activate("acme", "enrich", 2).await.unwrap();
    assert_eq!(sender_header(&h).await, "x-v2");

    let e = h.host.activate("acme", "enrich", 9).await.unwrap_err();
    assert!(
        matches!(e, UploadError::UnknownVersion { version: 9, .. }),
        "{e}"
    );
    assert_eq!(e.status(), 404);
    let e = h.host.rollback("acme", "nope").await.unwrap_err();
    assert!(matches!(e, UploadError::UnknownPlugin { .. }), "{e}");
    assert_eq!(e.status(), 404);

    assert!(h.host.delete("acme", "enrich").await.unwrap());
    assert!(h.host.hooks("acme").is_empty());
    match h.publish(&session("acme", "u"), "c", b"x").await {
        PublishVerdict::Accept { headers, .. } => assert!(headers.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(!h.host.delete("acme", "enrich").await.unwrap());
    assert!(h.host.list("acme").await.unwrap().is_empty());
}

#[tokio::test]
async fn rollback_without_previous_version_is_a_conflict() {
    let h = Harness::new().await;
    h.install("acme", "enrich", "enricher", None).await;
    let e = h.host.rollback("acme", "enrich").await.unwrap_err();
    assert!(matches!(e, UploadError::NoPreviousVersion { .. }), "{e}");
    assert_eq!(e.status(), 409);
}

#[tokio::test]
async fn uploads_over_the_size_limit_bad_names_and_bad_configs_are_refused() {
    let h = Harness::with_config(|c| c.max_component_bytes(10_000)).await;
    let e = h
        .host
        .upload("acme", "f", wasm("profanity-filter"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, UploadError::TooLarge { max: 10_000, .. }),
        "{e}"
    );
    assert_eq!(e.status(), 413);

    let h = Harness::new().await;
    let e = h
        .host
        .upload("acme", "no spaces!", wasm("enricher"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, UploadError::InvalidName(_)), "{e}");
    assert_eq!(e.status(), 400);
    let e = h
        .host
        .upload("acme", "f", wasm("enricher"), Some("[1, 2]"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must be a JSON object"), "{e}");
    let e = h
        .host
        .upload(
            "acme",
            "f",
            wasm("enricher"),
            Some(r#"{"failure_policy": "sometimes"}"#),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, UploadError::InvalidConfig(_)), "{e}");
    assert_eq!(e.status(), 400);
    // Nothing of the refused uploads was stored.
    assert!(h.host.list("acme").await.unwrap().is_empty());
}

/// Two hosts on one store stand for two gateway nodes: changes made on
/// one reach the other at its next `reload`.
#[tokio::test]
async fn reload_follows_changes_made_by_another_node() {
    use quiver_plugin_host::{HostServices, PluginHost};

    let a = Harness::new().await;
    let b = PluginHost::new(
        crate::support::test_config(&a.dir.path().join("node-b")),
        HostServices {
            store: a.store.clone(),
            publisher: a.publisher.clone(),
            metrics: prometheus::Registry::new(),
        },
    )
    .unwrap();

    a.install("acme", "enrich", "enricher", None).await;
    assert_eq!(b.active_version("acme", "enrich"), None);
    assert_eq!(b.reload("acme").await.unwrap(), 1);
    assert_eq!(b.active_version("acme", "enrich"), Some(1));
    assert_eq!(b.reload("acme").await.unwrap(), 0, "nothing changed");

    a.install("acme", "enrich", "enricher", None).await;
    assert_eq!(b.reload("acme").await.unwrap(), 1);
    assert_eq!(b.active_version("acme", "enrich"), Some(2));

    assert!(a.host.delete("acme", "enrich").await.unwrap());
    assert_eq!(b.reload("acme").await.unwrap(), 1);
    assert!(b.hooks("acme").is_empty());
}
