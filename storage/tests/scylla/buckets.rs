//! A channel that crosses a partition (bucket) boundary: offsets, reads in
//! both directions and the head are seamless across it, another node
//! that takes the channel over finds the head in the newer bucket, and an
//! edit rewrites an item in an older bucket (a logged, cross-partition
//! batch).

use bytes::Bytes;
use quiver_storage::scylla::BUCKET_SIZE;
use quiver_storage::{
    ChannelKey, Direction, Edit, EditKind, ItemState, MessageId, MessageLog, NewMessage, ReadRange,
};

use super::connect;

fn batch(channel: &ChannelKey, from: u64, count: u64) -> Vec<NewMessage> {
    (from..from + count)
        .map(|n| NewMessage {
            channel: channel.clone(),
            id: MessageId(u128::from(n)),
            timestamp_ms: n,
            sender: "buckets".into(),
            payload: Bytes::from(n.to_string()),
            headers: Vec::new(),
            idempotency_key: None,
            edit: None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_reads_cross_bucket_boundaries() {
    let store = connect("buckets-a").await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let channel = ChannelKey::new(format!("buckets-{nanos:x}"), "room");
    let total = BUCKET_SIZE + 100;
    let mut next = 1;
    while next <= total {
        let count = 500.min(total - next + 1);
        let out = store
            .append(batch(&channel, next, count))
            .await
            .expect("append");
        assert_eq!(out[0].offset, next);
        assert_eq!(out[out.len() - 1].offset, next + count - 1);
        next += count;
    }
    assert_eq!(store.head(&channel).await.ok(), Some(total));

    let forward = store
        .read(&channel, ReadRange::forward_after(BUCKET_SIZE - 50, 100))
        .await
        .expect("read forward");
    let offsets: Vec<u64> = forward.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (BUCKET_SIZE - 49..=BUCKET_SIZE + 50).collect::<Vec<_>>()
    );
    assert!(forward.iter().all(|m| m.id.0 == u128::from(m.offset)));

    let backward = store
        .read(
            &channel,
            ReadRange {
                after: Some(BUCKET_SIZE - 5),
                before: Some(BUCKET_SIZE + 6),
                limit: 100,
                direction: Direction::Backward,
            },
        )
        .await
        .expect("read backward");
    let offsets: Vec<u64> = backward.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (BUCKET_SIZE - 4..=BUCKET_SIZE + 5)
            .rev()
            .collect::<Vec<_>>()
    );

    // A clean shutdown releases the lease; another node continues at once.
    store.close().await;
    let other = connect("buckets-b").await;
    let out = other
        .append(batch(&channel, total + 1, 1))
        .await
        .expect("append on b");
    assert_eq!(out[0].offset, total + 1);

    // Edits from the newest bucket of items in both buckets, written by
    // the previous owner.
    let edits: Vec<NewMessage> = [(5, EditKind::Update), (BUCKET_SIZE + 1, EditKind::Delete)]
        .into_iter()
        .zip(batch(&channel, total + 2, 2))
        .map(|((target, kind), msg)| NewMessage {
            edit: Some(Edit { target, kind }),
            ..msg
        })
        .collect();
    other.append(edits.clone()).await.expect("edits");
    for (target, state, payload) in [
        (5, ItemState::Updated, edits[0].payload.clone()),
        (BUCKET_SIZE + 1, ItemState::Deleted, Bytes::new()),
    ] {
        let item = other
            .read(&channel, ReadRange::forward_after(target - 1, 1))
            .await
            .expect("read the target");
        assert_eq!(item[0].offset, target);
        assert_eq!((item[0].state, &item[0].payload), (state, &payload));
        assert_eq!(item[0].id.0, u128::from(target), "the id stays");
    }
}
