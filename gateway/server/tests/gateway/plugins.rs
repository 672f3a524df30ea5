//! Tenant plugins on a real gateway: real components uploaded through the
//! admin API, exercised by real clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quiver_client::{Client, ErrorCode, HistoryQuery, PublishOptions};
use serde_json::Value;

use crate::support::{TestServer, two_tenants};

#[path = "../../../../plugins/host/tests/support/build.rs"]
pub mod build;

fn admin_token(server: &TestServer) -> String {
    std::fs::read_to_string(quiver_server::tenants::admin_token_path(server.data.path()))
        .expect("admin token")
        .trim()
        .to_string()
}

/// PUTs a component; returns the status and the JSON body.
async fn upload(
    server: &TestServer,
    tenant: &str,
    name: &str,
    component: Bytes,
    config: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .put(format!(
            "http://{}/v1/tenants/{tenant}/plugins/{name}",
            server.api
        ))
        .bearer_auth(admin_token(server))
        .body(component);
    if let Some(config) = config {
        request = request.query(&[("config", config)]);
    }
    let response = request.send().await.expect("upload request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn upload_ok(
    server: &TestServer,
    tenant: &str,
    name: &str,
    example: &str,
    config: Option<&str>,
) {
    let (status, body) = upload(server, tenant, name, build::wasm(example), config).await;
    assert_eq!(status, 201, "upload {example}: {body}");
}

async fn next_payload(subscription: &mut quiver_client::Subscription) -> quiver_client::Message {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profanity_filter_rewrites_live_and_stored_messages() {
    let server = TestServer::start(&two_tenants()).await;
    upload_ok(
        &server,
        "acme",
        "20-profanity",
        "profanity-filter",
        Some(r#"{"words": "heck"}"#),
    )
    .await;
    let client = server.client("acme", "alice").await;
    let mut room = client.subscribe("room", None).await.expect("subscribe");
    client
        .publish("room", "what the heck")
        .await
        .expect("publish");
    client.publish("room", "all good").await.expect("publish");
    assert_eq!(&next_payload(&mut room).await.payload[..], b"what the ****");
    assert_eq!(&next_payload(&mut room).await.payload[..], b"all good");
    let page = client
        .history("room", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(
        &page.messages[1].payload[..],
        b"what the ****",
        "stored rewritten"
    );
    // Another tenant has no plugin: its words pass untouched.
    let other = server.client("globex", "bob").await;
    let mut theirs = other.subscribe("room", None).await.expect("subscribe");
    other
        .publish("room", "what the heck")
        .await
        .expect("publish");
    assert_eq!(
        &next_payload(&mut theirs).await.payload[..],
        b"what the heck"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiter_and_join_policy_use_the_key_value_store() {
    let server = TestServer::start(&two_tenants()).await;
    upload_ok(
        &server,
        "acme",
        "10-limit",
        "rate-limiter",
        Some(r#"{"limit": 3, "window_ms": 60000}"#),
    )
    .await;
    upload_ok(
        &server,
        "acme",
        "20-join",
        "join-policy",
        Some(r#"{"admins": "ops"}"#),
    )
    .await;
    let alice = server.client("acme", "alice").await;
    for _ in 0..3 {
        alice
            .publish("lobby", "hi")
            .await
            .expect("within the limit");
    }
    let error = alice
        .publish("lobby", "one too many")
        .await
        .expect_err("limited");
    assert_eq!(error.code(), Some(ErrorCode::Denied), "{error}");
    assert!(error.to_string().contains("rate limit"), "{error}");

    let bob = server.client("acme", "bob").await;
    let error = bob
        .subscribe("private:team", None)
        .await
        .expect_err("not a member");
    assert_eq!(error.code(), Some(ErrorCode::Denied), "{error}");
    let ops = server.client("acme", "ops").await;
    let ack = ops
        .publish("_members", "add private:team bob")
        .await
        .expect("admin command");
    assert!(ack.dropped, "membership commands are applied, not stored");
    bob.subscribe("private:team", None)
        .await
        .expect("now a member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_say_why() {
    let server = TestServer::start(&two_tenants()).await;
    let cases: [(&str, Bytes, u16, &str); 4] = [
        ("garbage", Bytes::from_static(b"\x00asm garbage"), 400, ""),
        (
            "filesystem",
            build::wasm("bad-imports-filesystem"),
            400,
            "wasi:filesystem",
        ),
        (
            "sockets",
            build::wasm("bad-imports-sockets"),
            400,
            "wasi:sockets",
        ),
        // A core module (no component layer): the wasm header of version 1.
        (
            "core",
            Bytes::from_static(b"\x00asm\x01\x00\x00\x00"),
            400,
            "component",
        ),
    ];
    for (name, bytes, status, mention) in cases {
        let (got, body) = upload(&server, "acme", name, bytes, None).await;
        assert_eq!(got, status, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(mention), "{name}: {message}");
    }
    let (status, _) = upload(
        &server,
        "acme",
        "huge",
        Bytes::from(vec![0u8; 11 << 20]),
        None,
    )
    .await;
    assert_eq!(status, 413);
    let response = reqwest::Client::new()
        .put(format!("http://{}/v1/tenants/acme/plugins/x", server.api))
        .bearer_auth("not-the-token")
        .body(build::wasm("enricher"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_are_contained_while_other_tenants_keep_flowing() {
    let server = TestServer::start(&two_tenants()).await;
    let globex = server.client("globex", "steady").await;
    let mut steady = globex.subscribe("feed", None).await.expect("subscribe");
    let running = Arc::new(AtomicBool::new(true));
    let delivered = Arc::new(AtomicU64::new(0));
    let flow = tokio::spawn({
        let (globex, running, delivered) = (globex.clone(), running.clone(), delivered.clone());
        async move {
            let mut sent = 0u64;
            while running.load(Ordering::Relaxed) {
                sent += 1;
                globex
                    .publish("feed", format!("{sent}"))
                    .await
                    .expect("globex keeps publishing");
                let message = next_payload(&mut steady).await;
                assert_eq!(message.offset, sent);
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let acme = server.client("acme", "alice").await;
    // Each bad plugin misbehaves on its trigger payload (always-trap on
    // every call).
    for (name, example, trigger) in [
        ("loop", "bad-infinite-loop", "spin"),
        ("bomb", "bad-memory-bomb", "bomb"),
        ("trap", "bad-always-trap", "anything"),
    ] {
        upload_ok(&server, "acme", name, example, None).await;
        for _ in 0..2 {
            let error = acme
                .publish("room", trigger)
                .await
                .expect_err("the plugin fails");
            assert_eq!(
                error.code(),
                Some(ErrorCode::PluginFailed),
                "{name}: {error}"
            );
            assert!(error.is_retryable());
        }
        assert!(acme.is_connected(), "{name}: the publisher stays connected");
        if name == "trap" {
            // Fail-closed on connect too: new connections are refused.
            let refused = Client::connect(server.client_config("acme", "carol")).await;
            let error = refused.expect_err("connect hook traps");
            assert_eq!(error.code(), Some(ErrorCode::PluginFailed), "{error}");
        } else {
            acme.publish("room", "harmless")
                .await
                .expect("the next call works");
        }
        let response = reqwest::Client::new()
            .delete(format!(
                "http://{}/v1/tenants/acme/plugins/{name}",
                server.api
            ))
            .bearer_auth(admin_token(&server))
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status().as_u16(), 204);
        acme.publish("room", trigger)
            .await
            .expect("works once the plugin is gone");
    }
    running.store(false, Ordering::Relaxed);
    flow.await.expect("globex flow");
    assert!(delivered.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swapping_under_live_traffic_fails_no_publish() {
    let server = TestServer::start(&two_tenants()).await;
    upload_ok(&server, "acme", "30-enrich", "enricher", None).await;
    let publisher: Client = server.client("acme", "alice").await;
    let reader = server.client("acme", "bob").await;
    let mut room = reader.subscribe("room", None).await.expect("subscribe");
    let running = Arc::new(AtomicBool::new(true));
    let traffic = tokio::spawn({
        let (publisher, running) = (publisher.clone(), running.clone());
        async move {
            let mut acked = 0u64;
            while running.load(Ordering::Relaxed) {
                let ack = publisher
                    .publish_with("room", PublishOptions::new("hello"))
                    .await
                    .expect("no publish fails during a swap");
                acked = ack.offset;
            }
            acked
        }
    });
    for round in 0..3 {
        upload_ok(
            &server,
            "acme",
            "30-enrich",
            "enricher",
            Some(&format!(r#"{{"sender_header": "x-from-{round}"}}"#)),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rollback = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/tenants/acme/plugins/30-enrich/rollback",
            server.api
        ))
        .bearer_auth(admin_token(&server))
        .send()
        .await
        .expect("rollback");
    assert_eq!(rollback.status().as_u16(), 200);
    running.store(false, Ordering::Relaxed);
    let last = traffic.await.expect("traffic");
    assert!(last > 0);
    // Every acked message arrived, in order, each with a sender header from
    // whichever version was live when it was published.
    for expected in 1..=last {
        let message = next_payload(&mut room).await;
        assert_eq!(message.offset, expected);
        assert!(
            message
                .headers
                .iter()
                .any(|(name, value)| name.starts_with("x-") && value == "alice"),
            "{:?}",
            message.headers
        );
    }
}
