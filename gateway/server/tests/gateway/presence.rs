//! Presence: join and leave events on subscription streams of channels
//! whose namespace enables it, and the HTTP presence endpoint.

use std::time::Duration;

use quiver_client::{PresenceEvent, Subscription, SubscriptionEvent};
use serde_json::{Value, json};

use crate::http_api::{call, error_code};
use crate::support::{FAST, TestServer, eventually};

const ACME_KEY: &str = "acme-api-key-0123456789";
const GLOBEX_KEY: &str = "globex-api-key-0123456789";

fn config() -> String {
    format!(
        r#"{FAST}
[[channels]]
namespace = "room"
presence = true

[[tenants]]
id = "acme"
hs256_secret = "acme-test-secret-0123456789abcdef"
api_keys = ["{ACME_KEY}"]

[[tenants]]
id = "globex"
hs256_secret = "globex-test-secret-0123456789abcd"
api_keys = ["{GLOBEX_KEY}"]
"#
    )
}

async fn next_event(subscription: &mut Subscription) -> SubscriptionEvent {
    tokio::time::timeout(Duration::from_secs(10), subscription.next_event())
        .await
        .expect("event in time")
        .expect("open")
        .expect("event")
}

async fn presence(subscription: &mut Subscription) -> (String, bool, u32) {
    match next_event(subscription).await {
        SubscriptionEvent::Presence(PresenceEvent {
            user,
            joined,
            connections,
            ..
        }) => (user, joined, connections),
        other => panic!("expected a presence event, got {other:?}"),
    }
}

async fn members(server: &TestServer, key: &str, channel: &str) -> Value {
    let (status, _, body) = call(
        server,
        "GET",
        &format!("/v1/channels/{channel}/presence"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_reach_subscribers() {
    let server = TestServer::start(&config()).await;
    let alice = server.client("acme", "alice").await;
    let mut watching = alice.subscribe("room:1", None).await.expect("subscribe");
    assert_eq!(
        presence(&mut watching).await,
        ("alice".into(), true, 1),
        "a subscription first sees itself"
    );

    let bob_phone = server.client("acme", "bob").await;
    let mut bob_sub = bob_phone.subscribe("room:1", None).await.expect("bob");
    assert_eq!(presence(&mut watching).await, ("bob".into(), true, 1));
    // Bob's snapshot: everyone present, sorted, himself included.
    assert_eq!(presence(&mut bob_sub).await, ("alice".into(), true, 1));
    assert_eq!(presence(&mut bob_sub).await, ("bob".into(), true, 1));

    // A second connection of bob is no event; the endpoint counts it.
    let bob_tablet = server.client("acme", "bob").await;
    let _tablet_sub = bob_tablet.subscribe("room:1", None).await.expect("tablet");
    let listed = members(&server, ACME_KEY, "room:1").await;
    assert_eq!(
        listed,
        json!({
            "channel": "room:1",
            "users": [
                { "user": "alice", "connections": 1 },
                { "user": "bob", "connections": 2 },
            ],
            "connections": 3,
        })
    );
    // Another tenant's channel of the same name is empty.
    let other = members(&server, GLOBEX_KEY, "room:1").await;
    assert_eq!(other["users"], json!([]));
    assert_eq!(other["connections"], 0);

    // One of bob's connections goes: bob is still there.
    bob_phone.close().await;
    drop(bob_sub);
    eventually(Duration::from_secs(10), async || {
        members(&server, ACME_KEY, "room:1").await["connections"] == 2
    })
    .await;
    alice
        .publish("room:1", "still here?")
        .await
        .expect("publish");
    match next_event(&mut watching).await {
        SubscriptionEvent::Message(m) => assert_eq!(m.offset, 1),
        other => panic!("expected the message (no leave yet), got {other:?}"),
    }
    // `next` skips presence events.
    bob_tablet.close().await;
    assert_eq!(presence(&mut watching).await, ("bob".into(), false, 0));
    alice.publish("room:1", "bye").await.expect("publish");
    let message = tokio::time::timeout(Duration::from_secs(10), watching.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("message");
    assert_eq!(message.offset, 2);

    // Unsubscribing leaves too.
    let carol = server.client("acme", "carol").await;
    let carol_sub = carol.subscribe("room:1", None).await.expect("carol");
    assert_eq!(presence(&mut watching).await, ("carol".into(), true, 1));
    carol_sub.unsubscribe().await.expect("unsubscribe");
    assert_eq!(presence(&mut watching).await, ("carol".into(), false, 0));
    alice.close().await;
    carol.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_without_presence_send_no_events() {
    let server = TestServer::start(&config()).await;
    let alice = server.client("acme", "alice").await;
    let mut plain = alice.subscribe("chat:1", None).await.expect("subscribe");
    let bob = server.client("acme", "bob").await;
    let _bob_sub = bob.subscribe("chat:1", None).await.expect("subscribe");
    bob.publish("chat:1", "hi").await.expect("publish");
    match next_event(&mut plain).await {
        SubscriptionEvent::Message(m) => assert_eq!(m.offset, 1),
        other => panic!("expected a message, got {other:?}"),
    }
    let (status, _, body) = call(
        &server,
        "GET",
        "/v1/channels/chat:1/presence",
        Some(ACME_KEY),
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "presence_disabled"),
        "{body}"
    );
    let (status, _, _) = call(
        &server,
        "GET",
        "/v1/channels/room:1/presence",
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_stay_within_their_tenant() {
    let server = TestServer::start(&config()).await;
    let alice = server.client("acme", "alice").await;
    let item = alice.publish("room:1", "mine").await.expect("publish");
    let (status, _, body) = call(
        &server,
        "DELETE",
        &format!("/v1/channels/room:1/messages/{}", item.offset),
        Some(GLOBEX_KEY),
        None,
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, _, body) = call(
        &server,
        "DELETE",
        &format!("/v1/channels/room:1/messages/{}", item.offset),
        Some(ACME_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    alice.close().await;
}
