//! Compiled components are cached on disk: a restart loads instead of
//! compiling, and a damaged cache file is recompiled, not trusted.

use std::sync::Arc;

use bytes::Bytes;
use quiver_plugin_host::PublishVerdict;

use crate::support::{Harness, session};

async fn filtered(h: &Harness) -> Bytes {
    match h.publish(&session("acme", "u"), "c", b"heck").await {
        PublishVerdict::Accept { payload, .. } => payload,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_restarted_host_loads_active_plugins_from_the_cache_without_compiling() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    {
        let h = Harness::open(dir.clone(), |c| c).await;
        h.install("acme", "filter", "profanity-filter", None).await;
        assert_eq!((h.host.compilations(), h.host.cache_hits()), (1, 0));
        // The same bytes again (new config, new version): no compile.
        h.install(
            "acme",
            "filter",
            "profanity-filter",
            Some(r#"{"words": "heck"}"#),
        )
        .await;
        assert_eq!((h.host.compilations(), h.host.cache_hits()), (1, 1));
        h.store.close().await;
    }

    let h = Harness::open(dir.clone(), |c| c).await;
    let report = h.host.load_active().await.unwrap();
    assert_eq!((report.loaded, report.failed.len()), (1, 0));
    assert_eq!((h.host.compilations(), h.host.cache_hits()), (0, 1));
    assert_eq!(h.host.active_version("acme", "filter"), Some(2));
    assert_eq!(&filtered(&h).await[..], b"****");
    assert_eq!(
        h.metric("quiver_plugin_artifact_cache_total", &[("result", "hit")]),
        1.0
    );
    h.store.close().await;
    drop(h);

    // Damage every cached artifact: the next start recompiles.
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let h = Harness::open(dir, |c| c).await;
    let report = h.host.load_active().await.unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!((h.host.compilations(), h.host.cache_hits()), (1, 0));
    assert_eq!(&filtered(&h).await[..], b"****");
}
