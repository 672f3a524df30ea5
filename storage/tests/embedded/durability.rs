//! Embedded-specific durability and expiry behaviour.

use std::time::Duration;

use bytes::Bytes;
use quiver_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use quiver_storage::{ChannelKey, MessageId, MessageLog, NewMessage, ReadRange};

use super::open;

fn keyed(channel: &ChannelKey, id: u128, key: &str) -> NewMessage {
    NewMessage {
        channel: channel.clone(),
        id: MessageId(id),
        timestamp_ms: 1,
        sender: "s".into(),
        payload: Bytes::from(id.to_string()),
        headers: Vec::new(),
        idempotency_key: Some(key.into()),
        edit: None,
    }
}

/// A key older than the window is forgotten: the retry is a new message,
/// and the new record then deduplicates as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_expire_after_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmbeddedConfig::new(dir.path()).idempotency_window(Duration::from_millis(200));
    let store = EmbeddedStore::open(config).expect("open");
    let room = ChannelKey::new("t", "room");

    let first = store
        .append(vec![keyed(&room, 1, "k")])
        .await
        .expect("append")[0];
    let retry = store
        .append(vec![keyed(&room, 2, "k")])
        .await
        .expect("append")[0];
    assert!(retry.duplicate && retry.offset == first.offset);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let late = store
        .append(vec![keyed(&room, 3, "k")])
        .await
        .expect("append")[0];
    assert!(!late.duplicate, "an expired key must be treated as new");
    assert_eq!((late.offset, late.id), (2, MessageId(3)));
    let again = store
        .append(vec![keyed(&room, 4, "k")])
        .await
        .expect("append")[0];
    assert!(again.duplicate && again.offset == 2);
}

/// Reopening many times keeps every message and the head, and a store
/// closed with `close` reopens the same way as one that was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_reopen_keeps_every_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let room = ChannelKey::new("t", "room");
    for round in 0..5u128 {
        let store = open(dir.path());
        let batch = (0..10)
            .map(|i| keyed(&room, round * 100 + i, &format!("{round}-{i}")))
            .collect();
        let out = store.append(batch).await.expect("append");
        assert_eq!(out[0].offset as u128, round * 10 + 1);
        if round % 2 == 0 {
            store.close().await;
        }
    }
    let store = open(dir.path());
    let all = store
        .read(&room, ReadRange::forward_after(0, 1000))
        .await
        .expect("read");
    assert_eq!(all.len(), 50);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, m)| m.offset == i as u64 + 1)
    );
    assert_eq!(store.head(&room).await.expect("head"), 50);
}
