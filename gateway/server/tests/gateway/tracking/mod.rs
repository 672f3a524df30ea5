//! Live tracking on a real gateway: positions as QUIC datagrams from real
//! clients, coalesced fan-out, loss, persistence, plugins and refusals.

mod cli;
mod fanout;
mod lossy;
mod persistence;
mod plugins;
mod refusals;

use std::time::Duration;

use quiver_client::{Client, ClientConfig, Reconnect, Trust, Watch, WatchEvent};
use quiver_session::Claims;

use crate::support::{FAST, TestServer, now_secs};

fn config() -> String {
    format!("{FAST}track_rate_per_sec = 1000\n")
}

/// A demo-tenant client allowed to report positions of `entities`.
pub async fn tracker(server: &TestServer, user: &str, entities: &[&str]) -> Client {
    Client::connect(tracker_config(
        server,
        user,
        entities,
        server.addr.to_string(),
    ))
    .await
    .expect("connect")
}

fn tracker_config(
    server: &TestServer,
    user: &str,
    entities: &[&str],
    addr: String,
) -> ClientConfig {
    let token = tracker_token(server, user, entities);
    ClientConfig::new(addr, token, Trust::CaPem(server.ca())).reconnect(Reconnect::disabled())
}

fn tracker_token(server: &TestServer, user: &str, entities: &[&str]) -> String {
    server.token_with(Claims {
        sub: user.into(),
        tenant: "demo".into(),
        exp: now_secs() + 3600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: Some(entities.iter().map(|e| (*e).to_owned()).collect()),
    })
}

async fn next_event(watch: &mut Watch, within: Duration) -> Option<WatchEvent> {
    match tokio::time::timeout(within, watch.next()).await {
        Ok(Some(Ok(event))) => Some(event),
        Ok(Some(Err(error))) => panic!("watch failed: {error}"),
        Ok(None) | Err(_) => None,
    }
}
