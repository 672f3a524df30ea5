//! Several gateway nodes sharing one channel: offsets stay gap-free and
//! duplicate-free across lease handovers, and a node whose lease was taken
//! over cannot write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_storage::scylla::ScyllaStore;
use quiver_storage::{
    Appended, ChannelKey, MessageId, MessageLog, NewMessage, ReadRange, StoreError,
};

use quiver_storage::conformance::cql_node;

use super::{KEYSPACE, connect};

fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{label}-{nanos:x}")
}

fn keyed(channel: &ChannelKey, n: u128, key: String) -> NewMessage {
    NewMessage {
        channel: channel.clone(),
        id: MessageId(n),
        timestamp_ms: 1,
        sender: "nodes".into(),
        payload: Bytes::from(n.to_string()),
        headers: Vec::new(),
        idempotency_key: Some(key.into()),
        edit: None,
    }
}

/// Appends `msg`, retrying on retryable errors as a publisher with an
/// idempotency key would, for up to 30 s.
async fn append_retrying(store: &ScyllaStore, msg: NewMessage) -> Appended {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.append(vec![msg.clone()]).await {
            Ok(out) => return out[0],
            Err(StoreError::Unavailable { retry_after, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(
                    retry_after.clamp(Duration::from_millis(20), Duration::from_millis(500)),
                )
                .await;
            }
            Err(err) => panic!("append failed: {err}"),
        }
    }
}

/// Two nodes append to one channel at once, each pausing midway so the
/// lease changes hands several times; every message gets exactly one
/// offset, the log is 1..=N without gaps, and each offset holds its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_channel_gap_free() {
    const PER_TASK: u128 = 12;
    let stores = [
        Arc::new(connect("node-a").await),
        Arc::new(connect("node-b").await),
    ];
    let channel = ChannelKey::new(unique("two-nodes"), "room");
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..2u128 {
            let (store, channel) = (Arc::clone(store), channel.clone());
            let base = (s as u128 * 10 + t) * 1000;
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..PER_TASK {
                    if i == PER_TASK / 2 {
                        // Go idle long enough for the lease to lapse.
                        tokio::time::sleep(Duration::from_millis(2600)).await;
                    }
                    let msg = keyed(&channel, base + i, format!("k-{}", base + i));
                    acked.push((append_retrying(&store, msg).await, base + i));
                }
                acked
            }));
        }
    }
    let mut by_offset = BTreeMap::new();
    for task in tasks {
        for (outcome, id) in task.await.unwrap_or_else(|e| panic!("task: {e}")) {
            assert!(
                !outcome.duplicate,
                "a first publish was reported as a duplicate"
            );
            assert_eq!(outcome.id, MessageId(id));
            assert!(
                by_offset.insert(outcome.offset, id).is_none(),
                "offset {} given twice",
                outcome.offset
            );
        }
    }
    let total = by_offset.len() as u64;
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    let log = stores[0]
        .read(&channel, ReadRange::forward_after(0, usize::MAX))
        .await
        .expect("read");
    assert_eq!(
        log.len() as u64,
        total,
        "the log has gaps or extra messages"
    );
    for m in &log {
        assert_eq!(
            Some(&m.id.0),
            by_offset.get(&m.offset),
            "offset {} holds another message",
            m.offset
        );
    }
    assert_eq!(stores[1].head(&channel).await.ok(), Some(total));
}

/// Node A owns a channel; the lease is then taken from it behind its back
/// (as by a node whose clock runs ahead). A's next append must not write:
/// it finds out at renewal and fails with a retryable error, and the log is
/// unchanged. Once the other lease ends, A takes the channel back and
/// continues from the durable head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_was_taken_cannot_write() {
    let a = connect("fenced-a").await;
    let channel = ChannelKey::new(unique("fencing"), "room");
    let first = append_retrying(&a, keyed(&channel, 1, "one".into())).await;
    assert_eq!(first.offset, 1);

    // Take the lease with a raw LWT, for 8 s (longer than the 5 s a node waits for a lease), as another node would.
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node_addr(cql_node())
        .build()
        .await
        .expect("raw session");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        + 8_000;
    let cql = format!(
        "UPDATE {KEYSPACE}.channel_leases SET owner = 'intruder/1', epoch = 99, lease_until = ? \
         WHERE tenant = ? AND channel = ? IF owner != 'intruder/1'"
    );
    session
        .query_unpaged(cql, (until, &*channel.tenant, &*channel.channel))
        .await
        .expect("take the lease");

    // Past half the lease TTL, A must renew before writing, and fails to.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = a
        .append(vec![keyed(&channel, 2, "two".into())])
        .await
        .expect_err("a node without the lease wrote");
    assert!(err.is_retryable(), "fencing must be retryable: {err}");
    assert_eq!(
        a.head(&channel).await.ok(),
        Some(1),
        "the fenced append wrote"
    );

    // The intruder never writes; once its lease ends, A continues at 2.
    let next = append_retrying(&a, keyed(&channel, 2, "two".into())).await;
    assert_eq!((next.offset, next.duplicate), (2, false));
}
