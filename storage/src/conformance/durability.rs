//! Durability across a reopen of the same storage.

use std::future::Future;

use super::{append_ok, fresh_tenant, keyed, message, read_all};
use crate::{ChannelKey, MessageLog};

/// Everything acked before the store is dropped is readable after `open`
/// is called again, heads are unchanged, new offsets continue from the old
/// head, and idempotency keys are still remembered.
///
/// `open` must open the same underlying storage every time it is called
/// (for the embedded store: the same path). The first store is dropped
/// before the second is opened.
pub async fn reopen_keeps_acked<S, F, Fut>(open: F)
where
    S: MessageLog,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let tenant = fresh_tenant("reopen");
    let a = ChannelKey::new(tenant.as_str(), "a");
    let b = ChannelKey::new(tenant.as_str(), "b");

    let store = open().await;
    let mut acked = Vec::new();
    for i in 0..6 {
        let batch = vec![message(&a), keyed(&a, &format!("key-{i}")), message(&b)];
        acked.extend(
            append_ok(&store, batch.clone())
                .await
                .into_iter()
                .zip(batch),
        );
    }
    let before_a = read_all(&store, &a).await;
    let before_b = read_all(&store, &b).await;
    drop(store);

    let store = open().await;
    assert_eq!(
        read_all(&store, &a).await,
        before_a,
        "channel a changed across reopen"
    );
    assert_eq!(
        read_all(&store, &b).await,
        before_b,
        "channel b changed across reopen"
    );
    for (outcome, sent) in &acked {
        let log = if sent.channel == a {
            &before_a
        } else {
            &before_b
        };
        let found = log.iter().find(|m| m.offset == outcome.offset);
        assert_eq!(
            found.map(|m| m.id),
            Some(outcome.id),
            "acked {outcome:?} lost"
        );
    }
    assert_eq!(store.head(&a).await.ok(), Some(12));
    assert_eq!(store.head(&b).await.ok(), Some(6));

    let next = append_ok(&store, vec![message(&a), message(&b)]).await;
    assert_eq!(
        (next[0].offset, next[1].offset),
        (13, 7),
        "offsets must continue after reopen"
    );
    let retry = append_ok(&store, vec![keyed(&a, "key-0")]).await[0];
    assert!(retry.duplicate, "idempotency keys must survive a reopen");
    assert_eq!(retry.offset, 2);
}
