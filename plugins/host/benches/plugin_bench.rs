//! Plugin host benchmark. Run from the repository root:
//!
//! ```text
//! cargo bench -p quiver-plugin-host --bench plugin-bench
//! ```
//!
//! Builds the example plugins (wasm32-wasip2), then measures, through the
//! host's public API on a real embedded store:
//! - `on_publish` per-call latency with no plugin (the call path alone)
//!   and with the profanity filter (reused instance), p50 and p99;
//! - a call on a fresh instance (instantiation included);
//! - upload to live, compiling and from the artifact cache;
//! - a hot swap of versions under concurrent load, counting failed calls.
//!
//! Prints a markdown table (copied into plugins/BENCHMARKS.md).

#[path = "../tests/support/build.rs"]
#[allow(dead_code, unreachable_pub)]
mod build;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use quiver_plugin_host::{
    ChannelPublisher, HostConfig, HostServices, PluginHost, PublishVerdict, SessionInfo,
};
use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};

/// Calls per latency row, and fresh-instance calls. `cargo bench` passes
/// `--bench`; without it (`cargo test --benches` runs this binary as a
/// test) a quick smoke run checks the benchmark still works.
fn sizes() -> (u64, u64, u32) {
    if std::env::args().any(|a| a == "--bench") {
        (200_000, 2_000, 10)
    } else {
        (2_000, 100, 2)
    }
}

struct NoPublisher;

impl ChannelPublisher for NoPublisher {
    fn publish(
        &self,
        _: &str,
        _: &str,
        _: Bytes,
        _: Vec<(String, String)>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        Box::pin(async { Err("benchmark publishes nothing".to_string()) })
    }
}

fn session(tenant: &str) -> SessionInfo {
    SessionInfo {
        tenant: tenant.into(),
        user: "alice".into(),
        session_id: "s1".into(),
        client: "bench/1".into(),
    }
}

fn host(dir: &std::path::Path, adjust: impl FnOnce(HostConfig) -> HostConfig) -> PluginHost {
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.join("store"))).expect("store");
    let services = HostServices {
        store: Arc::new(store),
        publisher: Arc::new(NoPublisher),
        metrics: prometheus::Registry::new(),
    };
    PluginHost::new(adjust(HostConfig::new(dir.join("cache"))), services).expect("host")
}

/// Latency of `calls` sequential `on_publish` calls, in nanoseconds.
async fn publish_latency(
    host: &PluginHost,
    tenant: &str,
    payload: &'static [u8],
    calls: u64,
) -> Histogram<u64> {
    let s = session(tenant);
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..calls / 10 {
        // Warm-up: instances, caches, branch predictors.
        let _ = host
            .on_publish(&s, "chat", Bytes::from_static(payload), Vec::new())
            .await;
    }
    for _ in 0..calls {
        let start = Instant::now();
        let v = host
            .on_publish(&s, "chat", Bytes::from_static(payload), Vec::new())
            .await;
        let ns = start.elapsed().as_nanos() as u64;
        assert!(matches!(v, PublishVerdict::Accept { .. }), "{v:?}");
        hist.record(ns.max(1)).expect("record");
    }
    hist
}

fn us(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1000.0)
}

fn row(name: &str, h: &Histogram<u64>) {
    println!(
        "| {name} | {} | {} |",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99))
    );
}

async fn upload_to_live(host: &PluginHost, tenant: &str, config: &str) -> Duration {
    let wasm = build::wasm("profanity-filter");
    let start = Instant::now();
    host.upload(tenant, "filter", wasm, Some(config))
        .await
        .expect("upload");
    // Live: the next call runs the new version.
    let v = host
        .on_publish(
            &session(tenant),
            "c",
            Bytes::from_static(b"heck"),
            Vec::new(),
        )
        .await;
    assert!(matches!(v, PublishVerdict::Accept { .. }));
    start.elapsed()
}

/// `callers` tasks publish without pause while the main task swaps the
/// filter's version `swaps` times; returns (calls, failed calls, p99 ns).
async fn hot_swap(host: &PluginHost, callers: usize, swaps: u32) -> (u64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (host, stop, failed) = (host.clone(), stop.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let s = session("bench");
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let v = host
                    .on_publish(&s, "chat", Bytes::from_static(b"what the heck"), Vec::new())
                    .await;
                hist.record((start.elapsed().as_nanos() as u64).max(1))
                    .expect("record");
                if !matches!(v, PublishVerdict::Accept { .. }) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::task::yield_now().await;
            }
            hist
        }));
    }
    let wasm = build::wasm("profanity-filter");
    for i in 0..swaps {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let config = format!(r#"{{"words": "heck,darn{i}"}}"#);
        host.upload("bench", "filter", wasm.clone(), Some(&config))
            .await
            .expect("swap");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        all.add(t.await.expect("caller")).expect("merge");
    }
    (
        all.len(),
        failed.load(Ordering::Relaxed),
        all.value_at_quantile(0.99),
    )
}

fn main() {
    let wasm_dir = build::built();
    eprintln!("example plugins built in {}", wasm_dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host(dir.path(), |c| c);
        let cold = upload_to_live(&host, "bench", "{}").await;
        let warm = upload_to_live(&host, "bench", r#"{"words": "heck"}"#).await;

        let (calls, fresh_calls, swaps) = sizes();
        let none = publish_latency(&host, "nobody", b"hello world, nice day", calls).await;
        let clean = publish_latency(&host, "bench", b"hello world, nice day", calls).await;
        let dirty = publish_latency(&host, "bench", b"what the heck, nice day", calls).await;

        let fresh_dir = tempfile::tempdir().expect("tempdir");
        let fresh_host = host_no_reuse(fresh_dir.path());
        fresh_host
            .upload("bench", "filter", build::wasm("profanity-filter"), None)
            .await
            .expect("upload");
        let fresh =
            publish_latency(&fresh_host, "bench", b"hello world, nice day", fresh_calls).await;

        let (swap_calls, failed, p99) = hot_swap(&host, 4, swaps).await;

        println!("| measurement | p50 | p99 |");
        println!("|---|---|---|");
        row(
            "`on_publish`, tenant without plugins (call path baseline)",
            &none,
        );
        row(
            "`on_publish`, profanity filter, clean message (accept), reused instance",
            &clean,
        );
        row(
            "`on_publish`, profanity filter, masked word (rewrite), reused instance",
            &dirty,
        );
        row(
            "`on_publish`, profanity filter, fresh instance every call",
            &fresh,
        );
        let added = |h: &Histogram<u64>, q| {
            h.value_at_quantile(q)
                .saturating_sub(none.value_at_quantile(q))
        };
        println!(
            "| added by the filter (accept / rewrite) | {} / {} | {} / {} |",
            us(added(&clean, 0.5)),
            us(added(&dirty, 0.5)),
            us(added(&clean, 0.99)),
            us(added(&dirty, 0.99)),
        );
        println!(
            "| instantiation (fresh-instance call minus reused-instance call) | {} | {} |",
            us(fresh
                .value_at_quantile(0.5)
                .saturating_sub(clean.value_at_quantile(0.5))),
            us(fresh
                .value_at_quantile(0.99)
                .saturating_sub(clean.value_at_quantile(0.99))),
        );
        println!();
        println!("| upload to live | time |");
        println!("|---|---|");
        println!(
            "| first upload (validate, compile, store, activate, first call) | {:.1} ms |",
            cold.as_secs_f64() * 1e3
        );
        println!(
            "| re-upload of the same bytes (compiled artifact from the disk cache) | {:.1} ms |",
            warm.as_secs_f64() * 1e3
        );
        println!();
        println!("| hot swap under load | value |");
        println!("|---|---|");
        println!("| callers / version swaps | 4 / {swaps} |");
        println!("| calls during the run | {swap_calls} |");
        println!("| failed calls | {failed} |");
        println!("| call p99 during swaps | {} |", us(p99));
        assert_eq!(failed, 0, "a hot swap failed calls");
    });
}

/// A host that never reuses an instance: every call instantiates.
fn host_no_reuse(dir: &std::path::Path) -> PluginHost {
    host(dir, |c| c.max_idle_per_plugin(0))
}
