//! Reads: paging in both directions, heads, and faithful round trips.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{append_ok, fresh_tenant, message, offsets, read_all};
use crate::{ChannelKey, Direction, Header, MessageLog, ReadRange, StoredMessage};

async fn read<S: MessageLog>(
    store: &S,
    channel: &ChannelKey,
    range: ReadRange,
) -> Vec<StoredMessage> {
    store
        .read(channel, range)
        .await
        .unwrap_or_else(|e| panic!("read {range:?} failed: {e}"))
}

fn range(after: Option<u64>, before: Option<u64>, limit: usize, direction: Direction) -> ReadRange {
    ReadRange {
        after,
        before,
        limit,
        direction,
    }
}

/// Paging forward with `after` and backward with `before` visits every
/// message exactly once, in order, and the bounds are exclusive.
pub async fn paging_returns_every_message_once<S: MessageLog>(store: S) {
    const N: u64 = 57;
    let channel = ChannelKey::new(fresh_tenant("paging"), "room");
    for _ in 0..N / 5 + 1 {
        let batch: Vec<_> = (0..5).map(|_| message(&channel)).collect();
        append_ok(&store, batch).await;
    }
    let n = store.head(&channel).await.unwrap_or_default();
    assert!(n >= N);

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = read(
            &store,
            &channel,
            range(Some(after), None, 10, Direction::Forward),
        )
        .await;
        let Some(last) = page.last() else { break };
        after = last.offset;
        seen.extend(offsets(&page));
    }
    assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "forward paging");

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = read(
            &store,
            &channel,
            range(None, before, 7, Direction::Backward),
        )
        .await;
        let Some(last) = page.last() else { break };
        before = Some(last.offset);
        seen.extend(offsets(&page));
    }
    assert_eq!(seen, (1..=n).rev().collect::<Vec<_>>(), "backward paging");

    let window = |dir| range(Some(10), Some(20), 100, dir);
    assert_eq!(
        offsets(&read(&store, &channel, window(Direction::Forward)).await),
        (11..20).collect::<Vec<_>>()
    );
    let back = offsets(&read(&store, &channel, window(Direction::Backward)).await);
    assert_eq!(back, (11..20).rev().collect::<Vec<_>>());
    let newest = read(
        &store,
        &channel,
        range(Some(10), None, 3, Direction::Backward),
    )
    .await;
    assert_eq!(
        offsets(&newest),
        vec![n, n - 1, n - 2],
        "backward starts at the newest"
    );

    for empty in [
        range(None, None, 0, Direction::Forward),
        range(Some(n), None, 10, Direction::Forward),
        range(Some(u64::MAX), None, 10, Direction::Backward),
        range(None, Some(1), 10, Direction::Backward),
        range(None, Some(0), 10, Direction::Forward),
        range(Some(5), Some(6), 10, Direction::Forward),
        range(Some(9), Some(3), 10, Direction::Forward),
    ] {
        assert!(
            read(&store, &channel, empty).await.is_empty(),
            "{empty:?} must be empty"
        );
    }
}

/// `head` is 0 for an unknown channel and then the last assigned offset.
pub async fn head_tracks_last_offset<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("head"), "room");
    assert_eq!(store.head(&channel).await.ok(), Some(0));
    let mut last = 0;
    for size in [1, 4, 2] {
        let out = append_ok(&store, (0..size).map(|_| message(&channel)).collect()).await;
        last = out.last().map_or(last, |o| o.offset);
        assert_eq!(store.head(&channel).await.ok(), Some(last));
    }
    assert_eq!(last, 7);
}

/// Id, timestamp, sender, headers (order, empty and non-ASCII values) and
/// payload (including empty and non-UTF-8) come back unchanged.
pub async fn fields_round_trip<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("fields"), "room");
    let mut rich = message(&channel);
    rich.id.0 = u128::MAX;
    rich.timestamp_ms = u64::MAX - 1;
    rich.sender = "sénder/ü 🚀".into();
    rich.payload = Bytes::from_static(&[0, 159, 146, 150, 255, 10]);
    rich.headers = vec![
        Header {
            name: "z-first".into(),
            value: "1".into(),
        },
        Header {
            name: "a-second".into(),
            value: String::new(),
        },
        Header {
            name: "z-first".into(),
            value: "répété".into(),
        },
    ];
    let mut bare = message(&channel);
    bare.payload = Bytes::new();
    bare.sender = "".into();
    append_ok(&store, vec![rich.clone(), bare.clone()]).await;
    let stored = read_all(&store, &channel).await;
    assert_eq!(stored.len(), 2);
    for (got, sent) in stored.iter().zip([&rich, &bare]) {
        assert_eq!(got.id, sent.id);
        assert_eq!(got.timestamp_ms, sent.timestamp_ms);
        assert_eq!(got.sender, sent.sender);
        assert_eq!(got.headers, sent.headers);
        assert_eq!(got.payload, sent.payload);
    }
}

/// 1 MiB payloads, alone and several in one batch, come back byte for byte.
pub async fn large_payloads_round_trip<S: MessageLog>(store: S) {
    const MIB: usize = 1024 * 1024;
    let channel = ChannelKey::new(fresh_tenant("large"), "room");
    let payload =
        |seed: u8| Bytes::from((0..MIB).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<_>>());
    let mut batch = Vec::new();
    for seed in 0..3 {
        let mut m = message(&channel);
        m.payload = payload(seed);
        batch.push(m);
    }
    append_ok(&store, batch).await;
    let mut single = message(&channel);
    single.payload = payload(9);
    append_ok(&store, vec![single]).await;

    let stored = read_all(&store, &channel).await;
    let seeds: BTreeSet<_> = stored.iter().map(|m| m.payload[0]).collect();
    assert_eq!(seeds, BTreeSet::from([0, 1, 2, 9]));
    for m in &stored {
        assert_eq!(m.payload.len(), MIB);
        assert_eq!(
            m.payload,
            payload(m.payload[0]),
            "offset {} differs",
            m.offset
        );
    }
}
