//! White-box tests of the writer's parts; the behaviour every backend shares
//! is tested by the conformance suite in `tests/embedded.rs`.

use std::time::Duration;

use bytes::Bytes;

use super::codec::IdempotencyRecord;
use super::engine::{Engine, now_ms};
use super::group::{self, HeadCache};
use super::sweep::Sweeper;
use super::*;
use crate::MessageId;

fn msg(channel: &ChannelKey, key: Option<&str>) -> NewMessage {
    NewMessage {
        channel: channel.clone(),
        id: MessageId(7),
        timestamp_ms: 1,
        sender: "s".into(),
        payload: Bytes::from_static(b"p"),
        headers: Vec::new(),
        idempotency_key: key.map(Into::into),
        edit: None,
    }
}

fn record_count(engine: &Engine) -> usize {
    engine.idempotency.iter().count()
}

#[test]
fn duplicates_across_calls_of_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut cache = HeadCache::default();
    let a = ChannelKey::new("t", "a");
    let call = |key| vec![prepare(&msg(&a, key)).unwrap()];
    let (results, failed) = group::commit(
        &engine,
        &mut cache,
        60_000,
        vec![call(Some("k")), call(None), call(Some("k"))],
    );
    assert!(failed.is_none());
    let got: Vec<_> = results
        .into_iter()
        .map(|r| r.unwrap()[0])
        .map(|o| (o.offset, o.duplicate))
        .collect();
    assert_eq!(got, vec![(1, false), (2, false), (1, true)]);
    assert_eq!(engine.head(&keys::channel_prefix(&a).unwrap()).unwrap(), 2);
}

#[test]
fn corrupt_record_fails_only_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let a = ChannelKey::new("t", "a");
    let bad = prepare(&msg(&a, Some("bad"))).unwrap();
    engine
        .idempotency
        .insert(bad.idempotency_key.clone().unwrap(), b"junk".to_vec())
        .unwrap();
    let good = prepare(&msg(&a, None)).unwrap();
    let (results, failed) = group::commit(
        &engine,
        &mut HeadCache::default(),
        60_000,
        vec![vec![bad], vec![good]],
    );
    assert!(failed.is_none());
    assert!(matches!(results[0], Err(StoreError::Corrupt { .. })));
    assert_eq!(results[1].as_ref().unwrap()[0].offset, 1);
}

#[test]
fn sweep_deletes_only_expired_records_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let now = now_ms();
    // More than one chunk of expired records, with fresh ones among them.
    for i in 0..2500u64 {
        let recorded_ms = if i % 500 == 0 { now } else { now - 10_000 };
        let record = IdempotencyRecord {
            offset: i + 1,
            id: MessageId(1),
            timestamp_ms: 1,
            recorded_ms,
        };
        engine
            .idempotency
            .insert(format!("key-{i:05}"), record.encode().to_vec())
            .unwrap();
    }
    let mut sweeper = Sweeper::new(Duration::ZERO, 1_000);
    sweeper.start_if_due();
    let mut steps = 0;
    while sweeper.active() {
        sweeper.step(&engine);
        steps += 1;
    }
    assert!(steps >= 3, "the sweep must work in chunks, took {steps}");
    assert_eq!(record_count(&engine), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_expired_key_value_data() {
    use crate::{KeyValueStore, KvScope};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    let scope = KvScope::new("t", "p");
    let short = Some(Duration::from_millis(1));
    for i in 0..1500 {
        let ttl = if i % 500 == 0 { None } else { short };
        let value = Bytes::from_static(b"v");
        store
            .kv_set(&scope, &format!("k{i}"), value, ttl)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut sweeper = Sweeper::new(Duration::ZERO, 1_000);
    sweeper.start_if_due();
    while sweeper.active() {
        sweeper.step(&store.engine);
    }
    assert_eq!(
        store.engine.kv.iter().count(),
        3,
        "only the unexpired keys stay"
    );
    assert!(store.kv_get(&scope, "k500").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_sweeps_expired_keys_between_groups() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig::new(dir.path())
        .idempotency_window(Duration::from_millis(20))
        .sweep_interval(Duration::ZERO);
    let store = EmbeddedStore::open(config).unwrap();
    let a = ChannelKey::new("t", "a");
    store.append(vec![msg(&a, Some("old"))]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    // This group's commit is followed by a sweep chunk.
    store.append(vec![msg(&a, Some("new"))]).await.unwrap();
    store.close().await;
    assert_eq!(record_count(&store.engine), 1);
    assert!(matches!(
        store.append(vec![msg(&a, None)]).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    assert_eq!(store.head(&a).await.unwrap(), 2, "reads work after close");
}

#[test]
fn config_and_inputs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        EmbeddedConfig::new(dir.path()).max_batch(0),
        EmbeddedConfig::new(dir.path()).queue_depth(0),
        EmbeddedConfig::new(dir.path()).max_group_bytes(0),
    ] {
        assert!(matches!(
            EmbeddedStore::open(config),
            Err(StoreError::Invalid(_))
        ));
    }
    let a = ChannelKey::new("t", "a");
    assert!(prepare(&msg(&a, Some(""))).is_err());
    assert!(prepare(&msg(&a, Some(&"k".repeat(256)))).is_err());
    let _open = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    let second = EmbeddedStore::open(EmbeddedConfig::new(dir.path()));
    assert!(
        matches!(second, Err(StoreError::Io(msg)) if msg.contains("in use")),
        "second open of one path must fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_expired_position_history() {
    use crate::{Position, PositionRecord, PositionStore};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    let channel = ChannelKey::new("t", "fleet");
    let record = |i: u64| PositionRecord {
        channel: channel.clone(),
        position: Position {
            entity: "e".into(),
            lat: 1.0,
            lon: 2.0,
            accuracy: None,
            heading: None,
            speed: None,
            timestamp_ms: i,
            user: "u".into(),
        },
    };
    store
        .save_positions((0..1500).map(record).collect(), Duration::from_millis(1))
        .await
        .unwrap();
    store
        .save_positions(vec![record(5000)], Duration::from_secs(3600))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut sweeper = Sweeper::new(Duration::ZERO, 1_000);
    sweeper.start_if_due();
    while sweeper.active() {
        sweeper.step(&store.engine);
    }
    assert_eq!(store.engine.positions_history.iter().count(), 1);
    assert_eq!(store.engine.positions_latest.iter().count(), 1);
    let history = store.position_history(&channel, "e", 0, 10).await.unwrap();
    assert_eq!(history.len(), 1);
}
