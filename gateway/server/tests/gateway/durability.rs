//! Nothing acknowledged is lost: graceful restarts and kill -9.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_client::{Client, ClientConfig, Direction, HistoryQuery, Reconnect, Trust};

use crate::support::{ACME_SECRET, ChildServer, FAST, TestServer, now_secs};

/// Every message of a channel, oldest first, by paging forward.
async fn read_all(client: &Client, channel: &str) -> Vec<(u64, String)> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .history(
                channel,
                HistoryQuery::latest(200)
                    .after(after)
                    .direction(Direction::Forward),
            )
            .await
            .expect("history");
        for m in &page.messages {
            all.push((
                m.offset,
                String::from_utf8(m.payload.to_vec()).expect("utf8"),
            ));
            after = m.offset;
        }
        if !page.has_more {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_keeps_history_and_continues_offsets() {
    let data = Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), FAST).await;
    let client = server.client("demo", "alice").await;
    for i in 1..=20 {
        client.publish("c", format!("m{i}")).await.expect("publish");
    }
    drop(client);
    server.stop().await;

    let server = TestServer::start_in(data, FAST).await;
    let client = server.client("demo", "alice").await;
    let all = read_all(&client, "c").await;
    assert_eq!(all.len(), 20);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, (offset, payload))| *offset == i as u64 + 1
                && *payload == format!("m{offset}"))
    );
    assert_eq!(
        client.publish("c", "m21").await.expect("publish").offset,
        21
    );
}

fn acme_config() -> String {
    format!("{FAST}\n[[tenants]]\nid = \"acme\"\nhs256_secret = \"{ACME_SECRET}\"\n")
}

fn client_config(addr: SocketAddr, dir: &Path) -> ClientConfig {
    let token = quiver_session::Claims {
        sub: "writer".into(),
        tenant: "acme".into(),
        exp: now_secs() + 600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: None,
    }
    .sign_hs256(ACME_SECRET.as_bytes())
    .expect("sign");
    let ca = quiver_server::tls::dev_cert_path(&dir.join("data"));
    ClientConfig::new(addr.to_string(), token, Trust::CaPem(ca)).reconnect(Reconnect::disabled())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_message_and_reuses_no_offset() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut server = ChildServer::spawn(dir.path(), Some(&acme_config())).await;
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();

    // Three concurrent publishers, recording every ack they get.
    let mut writers = Vec::new();
    for w in 0..3 {
        let client = Client::connect(client_config(server.addr, dir.path()))
            .await
            .expect("connect");
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let payload = format!("w{w}-{i}");
                match client.publish("orders", payload.clone()).await {
                    Ok(ack) => {
                        acked.lock().expect("lock").insert(ack.offset, payload);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill the server mid-stream, without warning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().expect("lock").len() < 300 {
        assert!(tokio::time::Instant::now() < deadline, "publishes too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.process.start_kill().expect("SIGKILL");
    server.process.wait().await.expect("reaped");
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writers notice the dead server")
            .expect("writer");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 300);

    let server = ChildServer::spawn(dir.path(), Some(&acme_config())).await;
    let client = Client::connect(client_config(server.addr, dir.path()))
        .await
        .expect("reconnect");
    let all = read_all(&client, "orders").await;
    // Gap-free from 1, and every acknowledged message is there, unchanged.
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, (offset, _))| *offset == i as u64 + 1)
    );
    let stored: BTreeMap<u64, String> = all.into_iter().collect();
    for (offset, payload) in &acked {
        assert_eq!(
            stored.get(offset),
            Some(payload),
            "acked offset {offset} survived"
        );
    }
    // New offsets continue after everything stored: none is reused.
    let head = stored.keys().last().copied().unwrap_or(0);
    let next = client
        .publish("orders", "after restart")
        .await
        .expect("publish");
    assert_eq!(next.offset, head + 1);
    assert!(next.offset > *acked.keys().last().expect("acked"));
}
