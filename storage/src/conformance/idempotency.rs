//! Idempotency keys: retries are answered with the original outcome and
//! write nothing; keys are scoped to one channel of one tenant.

use super::{append_ok, fresh_tenant, keyed, message, read_all};
use crate::{ChannelKey, MessageLog};

/// A retry with the same key returns the original offset, id and
/// timestamp with `duplicate = true`, and adds nothing to the log.
pub async fn retry_with_same_key_returns_original<S: MessageLog>(store: S) {
    let channel = ChannelKey::new(fresh_tenant("retry"), "room");
    append_ok(&store, vec![message(&channel)]).await;
    let first = append_ok(&store, vec![keyed(&channel, "k-1")]).await[0];
    assert!(!first.duplicate);
    assert_eq!(first.offset, 2);

    for _ in 0..3 {
        // A retry carries a new id (the gateway mints one per publish).
        let retry = keyed(&channel, "k-1");
        assert_ne!(retry.id, first.id);
        let again = append_ok(&store, vec![retry]).await[0];
        assert!(again.duplicate, "a retry must be reported as a duplicate");
        assert_eq!(
            (again.offset, again.id, again.timestamp_ms),
            (first.offset, first.id, first.timestamp_ms)
        );
    }
    let stored = read_all(&store, &channel).await;
    assert_eq!(stored.len(), 2, "duplicates must not be written");
    assert_eq!(stored[1].id, first.id);
    assert_eq!(store.head(&channel).await.ok(), Some(2));

    // A new key right after still gets the next offset.
    let next = append_ok(&store, vec![keyed(&channel, "k-2")]).await[0];
    assert_eq!((next.offset, next.duplicate), (3, false));
}

/// The same key on another channel, or on the same channel name in another
/// tenant, is a new message.
pub async fn idempotency_is_scoped_to_channel_and_tenant<S: MessageLog>(store: S) {
    let tenant = fresh_tenant("scope");
    let a = ChannelKey::new(tenant.as_str(), "a");
    let b = ChannelKey::new(tenant.as_str(), "b");
    let other = ChannelKey::new(format!("{tenant}-other"), "a");
    let outcomes = append_ok(&store, vec![keyed(&a, "same")]).await;
    assert!(!outcomes[0].duplicate);
    for channel in [&b, &other] {
        let out = append_ok(&store, vec![keyed(channel, "same")]).await[0];
        assert!(
            !out.duplicate,
            "key reused on {channel:?} must not be a duplicate"
        );
        assert_eq!(out.offset, 1);
    }
    for channel in [&a, &b, &other] {
        assert_eq!(read_all(&store, channel).await.len(), 1);
        let again = append_ok(&store, vec![keyed(channel, "same")]).await[0];
        assert!(again.duplicate && again.offset == 1);
    }
}

/// Within one batch, the second message with a key already used earlier in
/// the batch (same channel) is a duplicate of the first; the same key on
/// another channel in that batch is not.
pub async fn duplicate_within_one_batch<S: MessageLog>(store: S) {
    let tenant = fresh_tenant("in-batch");
    let a = ChannelKey::new(tenant.as_str(), "a");
    let b = ChannelKey::new(tenant.as_str(), "b");
    let batch = vec![
        keyed(&a, "x"),
        message(&a),
        keyed(&a, "x"),
        keyed(&b, "x"),
        keyed(&a, "y"),
    ];
    let out = append_ok(&store, batch).await;
    let got: Vec<_> = out.iter().map(|o| (o.offset, o.duplicate)).collect();
    assert_eq!(
        got,
        vec![(1, false), (2, false), (1, true), (1, false), (3, false)]
    );
    assert_eq!(
        out[2].id, out[0].id,
        "the duplicate reports the first message's id"
    );
    assert_eq!(read_all(&store, &a).await.len(), 3);
    assert_eq!(read_all(&store, &b).await.len(), 1);
}
