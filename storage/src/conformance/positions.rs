//! [`PositionStore`]: the newest latest position, scoping, history order,
//! bounds and expiry, and invalid input.

use std::time::Duration;

use super::fresh_tenant;
use crate::{ChannelKey, Position, PositionRecord, PositionStore, StoreError};

const HOUR: Duration = Duration::from_secs(3600);
const T0: u64 = 1_700_000_000_000;

fn fix(entity: &str, timestamp_ms: u64) -> Position {
    Position {
        entity: entity.into(),
        lat: 48.0 + (timestamp_ms % 1000) as f64 / 1000.0,
        lon: 11.5,
        accuracy: Some(5.0),
        heading: Some(90.0),
        speed: None,
        timestamp_ms,
        user: "user-1".into(),
    }
}

fn record(channel: &ChannelKey, position: Position) -> PositionRecord {
    PositionRecord {
        channel: channel.clone(),
        position,
    }
}

async fn save<S: PositionStore>(store: &S, batch: Vec<PositionRecord>, ttl: Duration) {
    store
        .save_positions(batch, ttl)
        .await
        .unwrap_or_else(|e| panic!("save_positions failed: {e}"));
}

/// The latest positions of `channel`, sorted by entity.
async fn latest<S: PositionStore>(store: &S, channel: &ChannelKey) -> Vec<Position> {
    let mut out = store
        .latest_positions(channel, 1000)
        .await
        .unwrap_or_else(|e| panic!("latest_positions failed: {e}"));
    out.sort_by(|a, b| a.entity.cmp(&b.entity));
    out
}

async fn history<S: PositionStore>(
    store: &S,
    channel: &ChannelKey,
    entity: &str,
    since_ms: u64,
    limit: usize,
) -> Vec<u64> {
    store
        .position_history(channel, entity, since_ms, limit)
        .await
        .unwrap_or_else(|e| panic!("position_history failed: {e}"))
        .iter()
        .map(|p| p.timestamp_ms)
        .collect()
}

/// A newer fix replaces the latest position (all of it, including an
/// optional value it lacks); an older one, arriving later or earlier in
/// the same batch, does not.
pub async fn positions_latest_keeps_newest<S: PositionStore>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("pos-latest"), "fleet");
    save(&store, vec![record(&channel, fix("a", T0 + 2000))], HOUR).await;
    save(&store, vec![record(&channel, fix("a", T0 + 1000))], HOUR).await;
    assert_eq!(latest(&store, &channel).await, vec![fix("a", T0 + 2000)]);

    let batch = vec![
        record(&channel, fix("b", T0 + 3000)),
        record(&channel, fix("b", T0 + 1000)),
        record(&channel, fix("a", T0 + 1500)),
    ];
    save(&store, batch, HOUR).await;
    assert_eq!(
        latest(&store, &channel).await,
        vec![fix("a", T0 + 2000), fix("b", T0 + 3000)]
    );

    let newer = Position {
        accuracy: None,
        speed: Some(3.5),
        user: "user-2".into(),
        ..fix("a", T0 + 4000)
    };
    save(&store, vec![record(&channel, newer.clone())], HOUR).await;
    assert_eq!(
        latest(&store, &channel).await,
        vec![newer, fix("b", T0 + 3000)]
    );
}

/// Latest positions are per channel and per tenant, and `limit` bounds
/// them.
pub async fn positions_are_scoped_by_channel_and_tenant<S: PositionStore>(store: S) {
    let tenant = fresh_tenant("pos-scope");
    let a = ChannelKey::new(tenant.as_str(), "a");
    let b = ChannelKey::new(tenant.as_str(), "b");
    let other = ChannelKey::new(format!("{tenant}-x"), "a");
    let batch = vec![
        record(&a, fix("e1", T0 + 1)),
        record(&a, fix("e2", T0 + 2)),
        record(&a, fix("e3", T0 + 3)),
        record(&b, fix("e1", T0 + 10)),
        record(&other, fix("e1", T0 + 20)),
    ];
    save(&store, batch, HOUR).await;
    let entities = |ps: Vec<Position>| ps.iter().map(|p| p.entity.to_string()).collect::<Vec<_>>();
    assert_eq!(entities(latest(&store, &a).await), vec!["e1", "e2", "e3"]);
    assert_eq!(latest(&store, &b).await, vec![fix("e1", T0 + 10)]);
    assert_eq!(latest(&store, &other).await, vec![fix("e1", T0 + 20)]);
    let empty = ChannelKey::new(tenant.as_str(), "nobody");
    assert!(latest(&store, &empty).await.is_empty());
    let limited = store.latest_positions(&a, 2).await.expect("latest");
    assert_eq!(limited.len(), 2);
    assert_eq!(history(&store, &b, "e1", 0, 10).await, vec![T0 + 10]);
    assert_eq!(history(&store, &other, "e1", 0, 10).await, vec![T0 + 20]);
}

/// History is newest first, holds only fixes at or after `since_ms`, at
/// most `limit` of them, and only the entity's own (not those of an entity
/// whose id starts with it).
pub async fn positions_history_newest_first<S: PositionStore>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("pos-history"), "fleet");
    let mut batch: Vec<_> = [3, 1, 5, 2, 4]
        .into_iter()
        .map(|i| record(&channel, fix("e", T0 + i * 1000)))
        .collect();
    batch.push(record(&channel, fix("e1", T0 + 6000)));
    batch.push(record(&channel, fix("f", T0 + 7000)));
    save(&store, batch, HOUR).await;
    let ts = |is: &[u64]| is.iter().map(|i| T0 + i * 1000).collect::<Vec<_>>();
    assert_eq!(
        history(&store, &channel, "e", 0, 100).await,
        ts(&[5, 4, 3, 2, 1])
    );
    assert_eq!(
        history(&store, &channel, "e", T0 + 3000, 100).await,
        ts(&[5, 4, 3])
    );
    assert_eq!(history(&store, &channel, "e", 0, 2).await, ts(&[5, 4]));
    assert!(history(&store, &channel, "e", 0, 0).await.is_empty());
    assert!(
        history(&store, &channel, "e", T0 + 9000, 10)
            .await
            .is_empty()
    );
    assert!(history(&store, &channel, "nobody", 0, 10).await.is_empty());
    let full = store
        .position_history(&channel, "e", T0 + 5000, 1)
        .await
        .expect("history");
    assert_eq!(full, vec![fix("e", T0 + 5000)], "fixes round trip");
}

/// History expires `history_ttl` after it is written (rounded up to whole
/// seconds by some backends); the latest position stays.
pub async fn positions_history_expires<S: PositionStore>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("pos-ttl"), "fleet");
    let ttl = Duration::from_secs(1);
    save(&store, vec![record(&channel, fix("e", T0))], ttl).await;
    save(&store, vec![record(&channel, fix("e", T0 + 1))], HOUR).await;
    assert_eq!(
        history(&store, &channel, "e", 0, 10).await,
        vec![T0 + 1, T0]
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        history(&store, &channel, "e", 0, 10).await,
        vec![T0 + 1],
        "the fix saved with a 1 s TTL must be gone after 2.5 s"
    );
    assert_eq!(latest(&store, &channel).await, vec![fix("e", T0 + 1)]);
}

/// Empty or too long entity ids, non-finite coordinates and bad channel
/// names are `Invalid`, and an invalid record fails its whole batch before
/// anything is written.
pub async fn positions_reject_invalid_input<S: PositionStore>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("pos-invalid"), "fleet");
    let long = "x".repeat(256);
    let bad = [
        fix("", T0),
        fix(&long, T0),
        Position {
            lat: f64::NAN,
            ..fix("e", T0)
        },
        Position {
            lon: f64::INFINITY,
            ..fix("e", T0)
        },
    ];
    for position in bad {
        let batch = vec![record(&channel, fix("ok", T0)), record(&channel, position)];
        let err = store.save_positions(batch, HOUR).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
    assert!(latest(&store, &channel).await.is_empty(), "nothing written");
    let no_channel = ChannelKey::new(channel.tenant.clone(), "");
    let err = store
        .save_positions(vec![record(&no_channel, fix("e", T0))], HOUR)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(matches!(
        store.latest_positions(&no_channel, 10).await,
        Err(StoreError::Invalid(_))
    ));
    for entity in ["", long.as_str()] {
        assert!(matches!(
            store.position_history(&channel, entity, 0, 10).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let max = "x".repeat(255);
    save(&store, vec![record(&channel, fix(&max, T0))], HOUR).await;
    assert_eq!(history(&store, &channel, &max, 0, 10).await, vec![T0]);
}
