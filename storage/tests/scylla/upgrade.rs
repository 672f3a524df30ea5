//! A keyspace created by the schema before edits (no `edit_target`,
//! `edit_kind` or `state` columns, no position tables) is upgraded in place
//! by `connect`, keeps its messages, and takes edits afterwards; applying
//! the schema again (the "already exists" path) also succeeds.

use bytes::Bytes;
use quiver_storage::conformance::cql_node;
use quiver_storage::scylla::{ScyllaConfig, ScyllaStore, apply_schema};
use quiver_storage::{
    ChannelKey, Edit, EditKind, ItemState, MessageId, MessageLog, NewMessage, ReadRange,
};
use scylla::client::session_builder::SessionBuilder;

/// The `messages` table as the first release created it.
const OLD_MESSAGES: &str = "CREATE TABLE $ks.messages (tenant text, channel text, \
    bucket bigint, seq bigint, id blob, ts bigint, sender text, \
    headers list<frozen<tuple<text, text>>>, payload blob, idem_key text, epoch bigint, \
    PRIMARY KEY ((tenant, channel, bucket), seq)) WITH CLUSTERING ORDER BY (seq ASC)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_upgrades_a_keyspace_of_the_previous_schema() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let ks = format!("quiver_upgrade_{:x}", nanos & 0xffff_ffff_ffff);
    let session = SessionBuilder::new()
        .known_node(cql_node().to_string())
        .build()
        .await
        .expect("connect");
    let run = |cql: String| {
        let session = &session;
        async move {
            session
                .query_unpaged(cql.as_str(), ())
                .await
                .unwrap_or_else(|e| panic!("{cql}: {e}"));
        }
    };
    run(format!(
        "CREATE KEYSPACE {ks} WITH replication = \
         {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    ))
    .await;
    run(OLD_MESSAGES.replace("$ks", &ks)).await;
    run(format!(
        "INSERT INTO {ks}.messages (tenant, channel, bucket, seq, id, ts, sender, payload) \
         VALUES ('t', 'c', 0, 1, 0x{:032x}, 5, 'old', 0x6f6c64)",
        7u128
    ))
    .await;

    let config = ScyllaConfig::from_url(&format!("scylla://{}/{ks}", cql_node()))
        .expect("config")
        .node_id("upgrade");
    let store = ScyllaStore::connect(config.clone())
        .await
        .expect("connect upgrades the keyspace");
    // Applying it again hits "already exists" on every added column.
    apply_schema(&session, &config)
        .await
        .expect("re-applying the schema");
    let channel = ChannelKey::new("t", "c");
    let old = store
        .read(&channel, ReadRange::forward_after(0, 10))
        .await
        .expect("read");
    assert_eq!(old.len(), 1);
    assert_eq!((old[0].id, old[0].edit), (MessageId(7), None));
    assert_eq!(old[0].state, ItemState::Original);

    let update = NewMessage {
        channel: channel.clone(),
        id: MessageId(8),
        timestamp_ms: 6,
        sender: "new".into(),
        payload: Bytes::from_static(b"updated"),
        headers: Vec::new(),
        idempotency_key: None,
        edit: Some(Edit {
            target: 1,
            kind: EditKind::Update,
        }),
    };
    let out = store.append(vec![update]).await.expect("append an edit");
    assert_eq!(out[0].offset, 2);
    let all = store
        .read(&channel, ReadRange::forward_after(0, 10))
        .await
        .expect("read");
    assert_eq!(all[0].state, ItemState::Updated);
    assert_eq!(&all[0].payload[..], b"updated");
    assert_eq!(all[0].sender.as_ref(), "old");
    store.close().await;
    run(format!("DROP KEYSPACE {ks}")).await;
}
