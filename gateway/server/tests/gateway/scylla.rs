//! The gateway on ScyllaDB (a real CQL node, `deploy/cql-node.sh start`):
//! chat and restarts, a database outage while serving, and a start while
//! the database is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_client::{Direction, ErrorCode, HistoryQuery};
use quiver_server::setup::OpenStore;
use quiver_storage::conformance::cql_node;
use quiver_storage::conformance::proxy::Proxy;
use quiver_storage::scylla::{ScyllaConfig, ScyllaStore};

use crate::support::{ChildServer, FAST, TestServer, eventually};

/// A keyspace of its own per test run, so runs never see each other's data.
fn keyspace(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("gw_{label}_{:x}", nanos & 0xffff_ffff_ffff)
}

/// A gateway in dev mode whose store is ScyllaDB as `scylla` reaches it
/// (through a fault-injecting proxy, in the outage tests).
async fn gateway_on(scylla: ScyllaConfig) -> TestServer {
    let store = ScyllaStore::connect(scylla)
        .await
        .expect("connect through the proxy");
    let data = Arc::new(tempfile::TempDir::new().expect("tempdir"));
    TestServer::start_with(
        data,
        FAST,
        "127.0.0.1:0".parse().expect("addr"),
        Some(OpenStore::Scylla(Arc::new(store))),
    )
    .await
}

fn config_with_store(url: &str) -> String {
    format!("{FAST}\n[store]\nurl = \"{url}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_history_and_restart_on_scylla() {
    let url = format!(
        "scylla://{}/{}?node_id=gw-chat",
        cql_node(),
        keyspace("chat")
    );
    let config = config_with_store(&url);
    let data = Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), &config).await;
    let client = server.client("demo", "alice").await;
    let mut live = client.subscribe("room", Some(0)).await.expect("subscribe");
    for i in 1..=20u64 {
        let ack = client
            .publish("room", format!("m{i}"))
            .await
            .expect("publish");
        assert_eq!(ack.offset, i);
    }
    for expected in 1..=20 {
        let message = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("message");
        assert_eq!(message.offset, expected);
    }
    drop(live);
    drop(client);
    server.stop().await;

    // Kill the gateway, start it again: history is in the database.
    let server = TestServer::start_in(data, &config).await;
    let client = server.client("demo", "alice").await;
    let page = client
        .history(
            "room",
            HistoryQuery::latest(50)
                .after(0)
                .direction(Direction::Forward),
        )
        .await
        .expect("history");
    let offsets: Vec<u64> = page.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (1..=20).collect::<Vec<_>>());
    assert_eq!(&page.messages[19].payload[..], b"m20");
    assert_eq!(
        client.publish("room", "m21").await.expect("publish").offset,
        21
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_publishes_fast_and_the_gateway_recovers_by_itself() {
    let node = cql_node();
    let proxy = Proxy::start(node).await;
    let scylla = ScyllaConfig::new(vec![proxy.addr().to_string()], keyspace("outage"))
        .node_id("gw-outage")
        .map_address(node, proxy.addr())
        .request_timeout(Duration::from_secs(2))
        .lease(Duration::from_secs(2), Duration::from_millis(200));
    let server = gateway_on(scylla).await;
    let client = server.client("demo", "alice").await;
    let watcher = server.client("demo", "bob").await;
    let mut live = watcher.subscribe("orders", None).await.expect("subscribe");
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(
            client
                .publish("orders", format!("before-{i}"))
                .await
                .expect("publish")
                .offset,
        );
    }

    proxy.cut();
    let started = Instant::now();
    let error = client
        .publish("orders", "during")
        .await
        .expect_err("the database is away");
    assert_eq!(error.code(), Some(ErrorCode::StoreUnavailable), "{error}");
    assert!(error.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast: {:?}",
        started.elapsed()
    );
    let server_ref = &server;
    eventually(Duration::from_secs(10), async || {
        server_ref.http_get("/readyz").await.0 == 503
    })
    .await;
    // The connections stay up while the database is away.
    assert!(client.is_connected() && watcher.is_connected());

    proxy.restore();
    let client_ref = &client;
    let mut recovered = None;
    eventually(Duration::from_secs(60), async || {
        match client_ref.publish("orders", "after").await {
            Ok(ack) => {
                recovered = Some(ack.offset);
                true
            }
            Err(error) => {
                assert_eq!(error.code(), Some(ErrorCode::StoreUnavailable), "{error}");
                false
            }
        }
    })
    .await;
    eventually(Duration::from_secs(10), async || {
        server_ref.http_get("/readyz").await.0 == 200
    })
    .await;

    // Offsets continue with no gap, and the subscriber saw everything acked.
    let recovered = recovered.expect("recovered");
    let mut seen = Vec::new();
    while seen.last() != Some(&recovered) {
        let message = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("message");
        seen.push(message.offset);
    }
    assert_eq!(seen, (1..=recovered).collect::<Vec<_>>());
    for offset in acked {
        assert!(seen.contains(&offset));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_while_the_database_is_down_waits_and_says_so() {
    let node = cql_node();
    let proxy = Proxy::start(node).await;
    proxy.cut();
    let dir = tempfile::TempDir::new().expect("tempdir");
    let url = format!(
        "scylla://{}/{}?node_id=gw-late",
        proxy.addr(),
        keyspace("late")
    );
    let config = format!(
        "{}\n[[tenants]]\nid = \"acme\"\nhs256_secret = \"{}\"\n",
        config_with_store(&url),
        crate::support::ACME_SECRET
    );
    let restore = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.restore();
        proxy
    });
    let (server, log) = ChildServer::spawn_with_log(dir.path(), Some(&config)).await;
    assert!(
        log.iter().any(|line| line.contains("retry")),
        "the log says it is retrying:\n{}",
        log.join("\n")
    );
    drop(server);
    drop(restore.await.expect("proxy"));
}

/// Positions are ephemeral and live in memory first: while the database is
/// away they keep reaching watchers, and the write-behind task stores them
/// once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_keeps_flowing_while_the_database_is_away() {
    let node = cql_node();
    let proxy = Proxy::start(node).await;
    let space = keyspace("tracking");
    let scylla = ScyllaConfig::new(vec![proxy.addr().to_string()], space.clone())
        .node_id("gw-tracking")
        .map_address(node, proxy.addr())
        .request_timeout(Duration::from_secs(2));
    let server = gateway_on(scylla).await;
    let courier = crate::tracking::tracker(&server, "courier", &["van-*"]).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:city", 0).await.expect("watch");

    proxy.cut();
    let base = crate::support::now_secs() * 1000;
    for i in 0..5u64 {
        let position = quiver_client::Position::new("van-1", 10.0 + i as f64, 20.0).at(base + i);
        courier.track("track:city", &position).await.expect("track");
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("a live position while the database is away")
            .expect("open")
            .expect("position");
        assert_eq!(event.position.lat, 10.0 + i as f64);
    }
    let server_ref = &server;
    eventually(Duration::from_secs(20), async || {
        let (_, body) = server_ref.http_get("/metrics").await;
        crate::support::metric(&body, "quiver_position_store_errors_total") >= Some(1.0)
    })
    .await;

    proxy.restore();
    // The newest position reaches the store once it answers again.
    let direct = ScyllaStore::connect(ScyllaConfig::new(vec![node.to_string()], space))
        .await
        .expect("connect directly");
    let key = quiver_storage::ChannelKey::new("demo", "track:city");
    eventually(Duration::from_secs(60), async || {
        use quiver_storage::PositionStore as _;
        direct
            .latest_positions(&key, 10)
            .await
            .is_ok_and(|latest| latest.iter().any(|p| p.lat == 14.0))
    })
    .await;
}
