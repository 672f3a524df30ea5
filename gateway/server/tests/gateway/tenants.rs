//! Tenant isolation: the same channel name in two tenants are two channels.

use std::time::Duration;

use quiver_client::{Client, ClientConfig, ErrorCode, HistoryQuery, Reconnect, Trust};
use quiver_session::Claims;

use crate::support::{GLOBEX_SECRET, TestServer, now_secs, two_tenants};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_other() {
    let server = TestServer::start(&two_tenants()).await;
    let acme = server.client("acme", "alice").await;
    let globex = server.client("globex", "mallory").await;
    let mut acme_room = acme.subscribe("room", None).await.expect("acme subscribes");
    let mut globex_room = globex
        .subscribe("room", None)
        .await
        .expect("globex subscribes");

    let from_globex = globex
        .publish("room", "globex secret")
        .await
        .expect("globex publish");
    let from_acme = acme
        .publish("room", "acme secret")
        .await
        .expect("acme publish");
    // Separate logs: both start at offset 1.
    assert_eq!((from_globex.offset, from_acme.offset), (1, 1));

    let got = tokio::time::timeout(Duration::from_secs(5), acme_room.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("message");
    assert_eq!(&got.payload[..], b"acme secret");
    let got = tokio::time::timeout(Duration::from_secs(5), globex_room.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("message");
    assert_eq!(&got.payload[..], b"globex secret");
    // Nothing else arrives for either.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), acme_room.next())
            .await
            .is_err()
    );

    let acme_history = acme
        .history("room", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(acme_history.messages.len(), 1);
    assert_eq!(&acme_history.messages[0].payload[..], b"acme secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_cross_into_another_tenant() {
    let server = TestServer::start(&two_tenants()).await;
    // Signed with globex's secret, claiming to be acme.
    let forged = Claims {
        sub: "mallory".into(),
        tenant: "acme".into(),
        exp: now_secs() + 600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: None,
    }
    .sign_hs256(GLOBEX_SECRET.as_bytes())
    .expect("sign");
    let config = ClientConfig::new(server.addr.to_string(), forged, Trust::CaPem(server.ca()))
        .reconnect(Reconnect::disabled());
    let error = Client::connect(config)
        .await
        .expect_err("forged token refused");
    assert_eq!(error.code(), Some(ErrorCode::Unauthorized), "{error}");
}
