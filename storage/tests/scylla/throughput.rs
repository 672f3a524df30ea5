//! Rough append throughput against the test node, for the numbers in
//! `storage/README.md`. Ignored by default (it measures, it does not
//! check): `cargo test -p quiver-storage --features cql-tests --test scylla
//! throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use quiver_storage::{ChannelKey, MessageId, MessageLog, NewMessage};

use super::connect;

async fn run(channels: usize, publishers_per_channel: usize, each: usize, keyed: bool) {
    let store = Arc::new(connect("throughput").await);
    // A fresh tenant per run, so no channel starts with a lease to wait for.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tenant = format!("throughput-{nanos:x}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..channels {
        for p in 0..publishers_per_channel {
            let store = Arc::clone(&store);
            let channel = ChannelKey::new(tenant.as_str(), format!("ch-{c}"));
            tasks.push(tokio::spawn(async move {
                for i in 0..each {
                    let msg = NewMessage {
                        channel: channel.clone(),
                        id: MessageId(i as u128),
                        timestamp_ms: 1,
                        sender: "bench".into(),
                        payload: Bytes::from(vec![b'x'; 200]),
                        headers: Vec::new(),
                        idempotency_key: keyed.then(|| format!("{p}-{i}").into()),
                        edit: None,
                    };
                    store
                        .append(vec![msg])
                        .await
                        .unwrap_or_else(|e| panic!("append: {e}"));
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("task: {e}"));
    }
    store.close().await;
    let total = channels * publishers_per_channel * each;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{channels} channels x {publishers_per_channel} publishers x {each} appends (keyed: {keyed}): \
         {total} messages in {secs:.2} s = {:.0} msg/s",
        total as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn append_throughput() {
    run(1, 32, 100, false).await;
    run(8, 8, 100, false).await;
    run(8, 8, 100, true).await;
}
