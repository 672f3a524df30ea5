//! Offset assignment, concurrency, and isolation between channels and tenants.

use std::sync::Arc;

use super::{append_ok, fresh_tenant, message, offsets, read_all};
use crate::{ChannelKey, MessageLog, NewMessage, StoreError};

/// Offsets start at 1 and stay contiguous across many batches of varying
/// size, and every outcome carries the id it was given.
pub async fn offsets_start_at_one_and_are_contiguous<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("contiguous"), "room");
    let mut expected = 1;
    for size in (1..=20).map(|i| i % 7 + 1) {
        let batch: Vec<_> = (0..size).map(|_| message(&channel)).collect();
        let ids: Vec<_> = batch.iter().map(|m| m.id).collect();
        for (outcome, id) in append_ok(&store, batch).await.into_iter().zip(ids) {
            assert_eq!(
                outcome.offset, expected,
                "offsets must be contiguous from 1"
            );
            assert_eq!(outcome.id, id);
            assert!(!outcome.duplicate);
            expected += 1;
        }
    }
    let stored = read_all(&store, &channel).await;
    assert_eq!(offsets(&stored), (1..expected).collect::<Vec<_>>());
}

/// Many tasks appending to one channel at once get a gap-free,
/// duplicate-free sequence, and each offset holds the message it was
/// reported for.
pub async fn concurrent_appends_are_gap_free<S: MessageLog>(store: S) {
    const TASKS: usize = 16;
    const CALLS: usize = 20;
    let store = Arc::new(store);
    let channel = ChannelKey::new(fresh_tenant("concurrent"), "room");
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, channel) = (Arc::clone(&store), channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for c in 0..CALLS {
                let batch: Vec<_> = (0..(t + c) % 3 + 1).map(|_| message(&channel)).collect();
                let ids: Vec<_> = batch.iter().map(|m| m.id).collect();
                let out = append_ok(&*store, batch).await;
                // Within one call, batch order is offset order.
                assert!(out.windows(2).all(|w| w[1].offset == w[0].offset + 1));
                acked.extend(out.iter().map(|a| a.offset).zip(ids));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(
            task.await
                .unwrap_or_else(|e| panic!("append task failed: {e}")),
        );
    }
    acked.sort();
    let n = acked.len() as u64;
    assert_eq!(
        acked.iter().map(|a| a.0).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    let stored = read_all(&*store, &channel).await;
    let stored: Vec<_> = stored.iter().map(|m| (m.offset, m.id)).collect();
    assert_eq!(
        stored, acked,
        "each offset must hold the message acked with it"
    );
    assert_eq!(store.head(&channel).await.ok(), Some(n));
}

/// Channels have their own sequences, even when one batch mixes them, and
/// outcomes come back in input order.
pub async fn channels_are_independent<S: MessageLog>(store: S) {
    let tenant = fresh_tenant("channels");
    let a = ChannelKey::new(tenant.as_str(), "a");
    let b = ChannelKey::new(tenant.as_str(), "b");
    let batch = vec![
        message(&a),
        message(&b),
        message(&a),
        message(&b),
        message(&b),
    ];
    let got: Vec<_> = append_ok(&store, batch)
        .await
        .iter()
        .map(|o| o.offset)
        .collect();
    assert_eq!(got, vec![1, 1, 2, 2, 3]);
    let got = append_ok(&store, vec![message(&b), message(&a)]).await;
    assert_eq!((got[0].offset, got[1].offset), (4, 3));
    assert_eq!(offsets(&read_all(&store, &a).await), vec![1, 2, 3]);
    assert_eq!(offsets(&read_all(&store, &b).await), vec![1, 2, 3, 4]);
    let other = ChannelKey::new(tenant.as_str(), "never-written");
    assert!(read_all(&store, &other).await.is_empty());
}

/// The same channel name in two tenants is two logs, and names that would
/// collide under naive concatenation stay apart.
pub async fn tenants_are_isolated<S: MessageLog>(store: S) {
    let base = fresh_tenant("iso");
    let one = ChannelKey::new(format!("{base}-1"), "shared");
    let two = ChannelKey::new(format!("{base}-2"), "shared");
    // tenant "X" + channel "yz" vs tenant "Xy" + channel "z".
    let split_a = ChannelKey::new(format!("{base}-3"), "yz");
    let split_b = ChannelKey::new(format!("{base}-3y"), "z");
    let first: Vec<NewMessage> = vec![message(&one), message(&one), message(&split_a)];
    append_ok(&store, first).await;
    let second = append_ok(&store, vec![message(&two), message(&split_b)]).await;
    assert_eq!(
        (second[0].offset, second[1].offset),
        (1, 1),
        "tenants must not share offsets"
    );

    let read_one = read_all(&store, &one).await;
    let read_two = read_all(&store, &two).await;
    assert_eq!(offsets(&read_one), vec![1, 2]);
    assert_eq!(offsets(&read_two), vec![1]);
    assert!(
        read_two
            .iter()
            .all(|m| read_one.iter().all(|o| o.id != m.id))
    );
    assert_eq!(read_all(&store, &split_a).await.len(), 1);
    assert_eq!(read_all(&store, &split_b).await.len(), 1);
    assert_eq!(store.head(&two).await.ok(), Some(1));
}

/// Empty or over-long (over 255 bytes) tenant and channel names fail with
/// `Invalid` and write nothing; an empty batch is a no-op; `ping` works.
pub async fn rejects_invalid_names<S: MessageLog>(store: S) {
    let tenant = fresh_tenant("invalid");
    let good = ChannelKey::new(tenant.as_str(), "ok");
    let bad = [
        ChannelKey::new("", "room"),
        ChannelKey::new(tenant.as_str(), ""),
        ChannelKey::new(tenant.as_str(), "c".repeat(256)),
        ChannelKey::new("t".repeat(256), "room"),
    ];
    for channel in &bad {
        let result = store.append(vec![message(&good), message(channel)]).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{channel:?}: {result:?}"
        );
        assert!(matches!(
            store.head(channel).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert_eq!(
        store.head(&good).await.ok(),
        Some(0),
        "a rejected batch writes nothing"
    );
    assert!(
        store
            .append(Vec::new())
            .await
            .is_ok_and(|out| out.is_empty())
    );
    assert!(store.ping().await.is_ok());
}
