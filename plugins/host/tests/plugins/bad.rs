//! Bad plugins: each one is uploaded as a real component and the host
//! stays unharmed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_plugin_host::{CallError, Position, PublishVerdict, TrackVerdict, UploadError, Verdict};

use crate::support::{Harness, session, wasm};

fn failed(v: PublishVerdict) -> CallError {
    match v {
        PublishVerdict::Failed { error, .. } => error,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn infinite_loop_is_cut_at_its_cpu_budget_and_the_next_call_works() {
    let h = Harness::with_config(|c| c.default_cpu_budget(Duration::from_millis(20))).await;
    h.install("acme", "loop", "bad-infinite-loop", None).await;
    let s = session("acme", "u");

    let start = Instant::now();
    let e = failed(h.publish(&s, "c", b"spin").await);
    let took = start.elapsed();
    assert_eq!(
        e,
        CallError::Timeout {
            budget: Duration::from_millis(20)
        }
    );
    assert!(e.to_string().contains("CPU budget of 20ms"), "{e}");
    assert!(
        took >= Duration::from_millis(20) && took < Duration::from_millis(400),
        "cut after {took:?}"
    );

    // The next call gets a fresh instance and works.
    let v = h.publish(&s, "c", b"hello").await;
    assert!(matches!(v, PublishVerdict::Accept { .. }), "{v:?}");
    assert_eq!(
        h.metric(
            "quiver_plugin_errors_total",
            &[("plugin", "loop"), ("kind", "timeout")]
        ),
        1.0
    );
}

#[tokio::test]
async fn per_tenant_budget_overrides_the_default() {
    use quiver_plugin_host::TenantPluginLimits;
    let h = Harness::with_config(|c| {
        c.tenant_limits(
            "slowpoke",
            TenantPluginLimits::new().cpu_budget(Duration::from_millis(3)),
        )
    })
    .await;
    h.install("slowpoke", "loop", "bad-infinite-loop", None)
        .await;
    let e = failed(h.publish(&session("slowpoke", "u"), "c", b"spin").await);
    assert_eq!(
        e,
        CallError::Timeout {
            budget: Duration::from_millis(3)
        }
    );
}

#[tokio::test]
async fn memory_bomb_is_trapped_at_the_limit() {
    let h = Harness::with_config(|c| c.memory_limit_bytes(8 << 20)).await;
    h.install("acme", "bomb", "bad-memory-bomb", None).await;
    let s = session("acme", "u");
    let e = failed(h.publish(&s, "c", b"bomb").await);
    assert_eq!(
        e,
        CallError::Memory {
            limit_bytes: 8 << 20
        }
    );
    assert!(matches!(
        h.publish(&s, "c", b"ok").await,
        PublishVerdict::Accept { .. }
    ));
    assert_eq!(
        h.metric(
            "quiver_plugin_errors_total",
            &[("plugin", "bomb"), ("kind", "memory")]
        ),
        1.0
    );
}

#[tokio::test]
async fn always_trap_is_recycled_and_its_failure_policy_applies() {
    let h = Harness::new().await;
    h.install("acme", "trap", "bad-always-trap", None).await;
    let s = session("acme", "u");
    let instantiations = || h.metric("quiver_plugin_instantiations_total", &[("plugin", "trap")]);
    let before = instantiations();

    // Fail-closed by default, with the panic message in the error.
    for _ in 0..3 {
        match failed(h.publish(&s, "c", b"").await) {
            CallError::Trap { message } => {
                assert!(message.contains("always-trap: on_publish"), "{message}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    assert!(matches!(
        h.host.on_connect(&s, "{}").await,
        Verdict::Failed { .. }
    ));
    assert!(matches!(
        h.host.on_subscribe(&s, "c").await,
        Verdict::Failed { .. }
    ));
    let position = Position {
        entity: "van-7".into(),
        lat: 52.52,
        lon: 13.40,
        accuracy: Some(5.0),
        heading: None,
        speed: Some(8.5),
        timestamp_ms: 1,
    };
    match h.host.on_track(&s, "fleet", &position).await {
        TrackVerdict::Failed {
            error: CallError::Trap { message },
            ..
        } => {
            assert!(message.contains("on_track of van-7"), "{message}")
        }
        other => panic!("expected a failed track call, got {other:?}"),
    }
    // Every failed call dropped its instance: the first call used the one
    // left pooled by the upload's manifest call, each later one a new one.
    assert_eq!(instantiations() - before, 5.0);
    assert_eq!(
        h.metric(
            "quiver_plugin_errors_total",
            &[("plugin", "trap"), ("kind", "trap")]
        ),
        6.0
    );

    // Fail-open for publish: the message goes through untouched.
    h.install(
        "acme",
        "trap",
        "bad-always-trap",
        Some(r#"{"failure_policy": {"publish": "fail-open"}}"#),
    )
    .await;
    let v = h.publish(&s, "c", b"m").await;
    assert_eq!(
        v,
        PublishVerdict::Accept {
            payload: Bytes::from_static(b"m"),
            headers: vec![]
        }
    );
    assert!(
        matches!(h.host.on_subscribe(&s, "c").await, Verdict::Failed { .. }),
        "subscribe stays fail-closed"
    );
}

#[tokio::test]
async fn garbage_core_modules_and_empty_components_are_refused() {
    let h = Harness::new().await;
    let e = h
        .host
        .upload(
            "acme",
            "x",
            Bytes::from_static(b"definitely not wasm"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, UploadError::NotWasm), "{e}");
    // The smallest valid core module: magic, version 1, no sections.
    let e = h
        .host
        .upload("acme", "x", Bytes::from_static(b"\0asm\x01\0\0\0"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, UploadError::CoreModule), "{e}");
    assert!(e.to_string().contains("core WebAssembly module"), "{e}");
    // A valid header with a broken body.
    let e = h
        .host
        .upload(
            "acme",
            "x",
            Bytes::from_static(b"\0asm\x0d\0\x01\0\xff\xff"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, UploadError::Compile(_)), "{e}");
    // The smallest valid component: fits nothing.
    let e = h
        .host
        .upload("acme", "x", Bytes::from_static(b"\0asm\x0d\0\x01\0"), None)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("missing: the exported interface quiver:plugin/hooks@0.1.0"),
        "{e}"
    );
    assert!(h.host.list("acme").await.unwrap().is_empty());
    assert!(h.host.hooks("acme").is_empty());
}

fn forbidden_names(e: &UploadError) -> Vec<String> {
    match e {
        UploadError::ForbiddenImports(imports) => imports.iter().map(|i| i.name.clone()).collect(),
        other => panic!("expected ForbiddenImports, got {other}"),
    }
}

#[tokio::test]
async fn components_importing_filesystem_or_sockets_are_refused_by_name() {
    let h = Harness::new().await;
    let e = h
        .host
        .upload("acme", "fs", wasm("bad-imports-filesystem"), None)
        .await
        .unwrap_err();
    let names = forbidden_names(&e);
    assert!(
        names.iter().any(|n| n.starts_with("wasi:filesystem/")),
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.starts_with("wasi:cli/")),
        "allowed imports are not listed: {names:?}"
    );
    assert!(e.to_string().contains("wasi:filesystem/preopens@"), "{e}");
    assert!(e.to_string().contains("no filesystem"), "{e}");
    assert_eq!(e.status(), 400);

    let e = h
        .host
        .upload("acme", "net", wasm("bad-imports-sockets"), None)
        .await
        .unwrap_err();
    let names = forbidden_names(&e);
    assert!(
        names.iter().any(|n| n.starts_with("wasi:sockets/tcp")),
        "{names:?}"
    );
    assert!(e.to_string().contains("no network access"), "{e}");
    assert!(h.host.list("acme").await.unwrap().is_empty());
}
