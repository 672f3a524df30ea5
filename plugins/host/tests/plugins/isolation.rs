//! One tenant's misbehaving plugin does not slow another tenant's calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use quiver_plugin_host::{CallError, PublishVerdict};

use crate::support::{Harness, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_tenant_does_not_stop_another_tenants_calls() {
    let h = Arc::new(Harness::new().await);
    h.install("evil", "loop", "bad-infinite-loop", None).await;
    h.install("good", "filter", "profanity-filter", None).await;

    // Tenant "evil" spins through its CPU budget on every call, without
    // pause, from one task.
    let stop = Arc::new(AtomicBool::new(false));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let spinner = {
        let (h, stop, timeouts) = (h.clone(), stop.clone(), timeouts.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let PublishVerdict::Failed {
                    error: CallError::Timeout { .. },
                    ..
                } = h.publish(&session("evil", "x"), "c", b"spin").await
                {
                    timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    while timeouts.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Meanwhile, for 300 ms, tenant "good" gets correct answers, quickly.
    let good = session("good", "alice");
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let start = Instant::now();
        let v = h.publish(&good, "c", b"oh heck").await;
        latencies.push(start.elapsed());
        match v {
            PublishVerdict::Accept { payload, .. } => assert_eq!(&payload[..], b"oh ****"),
            other => panic!("good tenant's call failed: {other:?}"),
        }
    }
    let during = timeouts.load(Ordering::Relaxed) - 1;
    stop.store(true, Ordering::Relaxed);
    spinner.await.unwrap();

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        during >= 5,
        "the bad tenant kept spinning throughout ({during} timeouts)"
    );
    assert!(
        latencies.len() >= 100,
        "only {} good calls in 300 ms",
        latencies.len()
    );
    // Each bad call burns a 10 ms budget; had the good tenant's calls
    // queued behind them, its median would be about that.
    assert!(median < Duration::from_millis(5), "median {median:?}");
}
