//! Each example plugin's behaviour, through the host's public API.

use bytes::Bytes;
use quiver_plugin_host::{Hook, PublishVerdict, Verdict};
use quiver_storage::{KeyValueStore, KvScope};

use crate::support::{Harness, session};

fn accepted(v: PublishVerdict) -> (Bytes, Vec<(String, String)>) {
    match v {
        PublishVerdict::Accept { payload, headers } => (payload, headers),
        other => panic!("expected Accept, got {other:?}"),
    }
}

#[tokio::test]
async fn profanity_filter_masks_listed_words_and_passes_clean_text() {
    let h = Harness::new().await;
    h.install(
        "acme",
        "filter",
        "profanity-filter",
        Some(r#"{"words": "heck, darn"}"#),
    )
    .await;
    let s = session("acme", "alice");

    let (payload, _) = accepted(h.publish(&s, "chat", b"What the HECK, darn it").await);
    assert_eq!(&payload[..], b"What the ****, **** it");

    let headers = vec![("k".to_string(), "v".to_string())];
    let (payload, kept) = accepted(
        h.host
            .on_publish(
                &s,
                "chat",
                Bytes::from_static(b"checkers are fine"),
                headers.clone(),
            )
            .await,
    );
    assert_eq!(
        &payload[..],
        b"checkers are fine",
        "substrings of words are not masked"
    );
    assert_eq!(kept, headers, "headers survive");
}

#[tokio::test]
async fn rate_limiter_rejects_past_the_limit_within_its_window() {
    let h = Harness::new().await;
    // A window far longer than the test, so all calls fall in one window
    // (unless the test straddles a window boundary, which a 1-hour window
    // makes vanishingly rare).
    h.install(
        "acme",
        "limit",
        "rate-limiter",
        Some(r#"{"limit": 3, "window_ms": 3600000}"#),
    )
    .await;
    let alice = session("acme", "alice");
    for i in 0..3 {
        let v = h.publish(&alice, "chat", b"hi").await;
        assert!(
            matches!(v, PublishVerdict::Accept { .. }),
            "message {i}: {v:?}"
        );
    }
    match h.publish(&alice, "chat", b"hi").await {
        PublishVerdict::Reject { plugin, reason } => {
            assert_eq!(&*plugin, "limit");
            assert!(reason.contains("at most 3"), "{reason}");
        }
        other => panic!("expected Reject, got {other:?}"),
    }
    // Per user: bob has his own budget.
    let bob = session("acme", "bob");
    assert!(matches!(
        h.publish(&bob, "chat", b"").await,
        PublishVerdict::Accept { .. }
    ));

    // The counter lives in the store under the plugin's scope, with a TTL.
    let scope = KvScope::new("acme", "limit");
    let window = quiver_plugin_host_now_ms() / 3_600_000;
    let stored = h
        .store
        .kv_get(&scope, &format!("rate:alice:{window}"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"4"[..]));
}

fn quiver_plugin_host_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn join_policy_admits_only_members_to_private_channels() {
    let h = Harness::new().await;
    h.install("acme", "join", "join-policy", Some(r#"{"admins": "ops"}"#))
        .await;
    let (ops, alice, bob) = (
        session("acme", "ops"),
        session("acme", "alice"),
        session("acme", "bob"),
    );

    assert_eq!(
        h.host.on_subscribe(&bob, "public:lobby").await,
        Verdict::Allow
    );
    match h.host.on_subscribe(&alice, "private:team").await {
        Verdict::Deny { reason, .. } => assert_eq!(reason, "not a member of private:team"),
        other => panic!("expected Deny, got {other:?}"),
    }

    // Only admins manage membership, and commands are not stored.
    let cmd = b"add private:team alice";
    assert!(matches!(
        h.publish(&bob, "_members", cmd).await,
        PublishVerdict::Reject { .. }
    ));
    assert!(matches!(
        h.publish(&ops, "_members", cmd).await,
        PublishVerdict::Drop { .. }
    ));
    assert_eq!(
        h.host.on_subscribe(&alice, "private:team").await,
        Verdict::Allow
    );
    assert!(matches!(
        h.host.on_subscribe(&bob, "private:team").await,
        Verdict::Deny { .. }
    ));
    // The change was announced in the plugin's own tenant, and counted.
    let published = h.publisher.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].tenant, "acme");
    assert_eq!(published[0].channel, "private:team");
    assert_eq!(&published[0].payload[..], b"alice joined");
    let header = ("x-system".to_string(), "membership".to_string());
    assert_eq!(published[0].headers, vec![header]);
    let changes = [("plugin", "join"), ("name", "membership_changes")];
    assert_eq!(h.metric("quiver_plugin_custom_total", &changes), 1.0);

    // Membership written straight into the store (the plugin's kv scope)
    // counts too, e.g. seeded by an operator.
    h.store
        .kv_set(
            &KvScope::new("acme", "join"),
            "member:private:team:bob",
            Bytes::from_static(b"1"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        h.host.on_subscribe(&bob, "private:team").await,
        Verdict::Allow
    );

    let remove = b"remove private:team alice";
    assert!(matches!(
        h.publish(&ops, "_members", remove).await,
        PublishVerdict::Drop { .. }
    ));
    assert!(matches!(
        h.host.on_subscribe(&alice, "private:team").await,
        Verdict::Deny { .. }
    ));
    // Other channels' publishes pass through the policy untouched.
    assert!(matches!(
        h.publish(&alice, "chat", b"").await,
        PublishVerdict::Accept { .. }
    ));
}

#[tokio::test]
async fn enricher_adds_sender_and_time_headers() {
    let h = Harness::new().await;
    h.install("acme", "enrich", "enricher", None).await;
    let before = quiver_plugin_host_now_ms();
    let original = vec![("trace".to_string(), "abc".to_string())];
    let (payload, headers) = accepted(
        h.host
            .on_publish(
                &session("acme", "alice"),
                "chat",
                Bytes::from_static(b"x"),
                original,
            )
            .await,
    );
    assert_eq!(&payload[..], b"x");
    assert_eq!(headers[0], ("trace".into(), "abc".into()));
    assert_eq!(headers[1], ("x-sender".into(), "alice".into()));
    assert_eq!(headers[2].0, "x-received-ms");
    let at: u64 = headers[2].1.parse().unwrap();
    assert!(at >= before && at <= quiver_plugin_host_now_ms());
}

#[tokio::test]
async fn plugins_chain_in_name_order_and_see_earlier_rewrites() {
    let h = Harness::new().await;
    // The enricher runs first (10-) and the filter (20-) sees its headers
    // and masks the payload; the result carries both changes.
    h.install("acme", "20-filter", "profanity-filter", None)
        .await;
    h.install_enricher("acme", "10-enrich", "x-from").await;
    let (payload, headers) = accepted(h.publish(&session("acme", "al"), "c", b"oh heck").await);
    assert_eq!(&payload[..], b"oh ****");
    assert_eq!(headers[0], ("x-from".into(), "al".into()));
}

#[tokio::test]
async fn manifest_is_respected_and_tenants_are_separate() {
    let h = Harness::new().await;
    h.install("acme", "join", "join-policy", None).await;
    h.install("acme", "filter", "profanity-filter", None).await;
    let hooks = h.host.hooks("acme");
    assert!(hooks.contains(Hook::Publish) && hooks.contains(Hook::Subscribe));
    assert!(!hooks.contains(Hook::Connect) && !hooks.contains(Hook::Track));
    assert!(h.host.hooks("other").is_empty());

    // The filter lists only on-publish: a subscribe never reaches it.
    h.host.on_subscribe(&session("acme", "a"), "public").await;
    assert_eq!(
        h.metric(
            "quiver_plugin_calls_total",
            &[("plugin", "filter"), ("hook", "on-subscribe")]
        ),
        0.0
    );
    assert_eq!(
        h.metric(
            "quiver_plugin_calls_total",
            &[("plugin", "join"), ("hook", "on-subscribe")]
        ),
        1.0
    );
    // Nor does a connect reach anything.
    assert_eq!(
        h.host.on_connect(&session("acme", "a"), "{}").await,
        Verdict::Allow
    );
    assert_eq!(
        h.metric("quiver_plugin_calls_total", &[("hook", "on-connect")]),
        0.0
    );

    // Another tenant runs none of acme's plugins.
    let (payload, _) = accepted(h.publish(&session("other", "a"), "c", b"heck").await);
    assert_eq!(&payload[..], b"heck");
}
