//! Starts a real gateway in this process, gives its metric families
//! samples, scrapes `/metrics` and checks that every metric and label the
//! dashboard and the alert rules query exists.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_client::{Client, ClientConfig, Reconnect, Trust};
use quiver_server::config::Config;
use quiver_server::setup::{Loaded, bind, open_store};
use quiver_session::Claims;

use crate::promql::{Selector, alert_queries, dashboard_queries, scraped_families, selectors};
use crate::support::{dashboard, yaml};

async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "GET {path}: {response}"
    );
    response
}

fn token(secret: &[u8], user: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    Claims {
        sub: user.into(),
        tenant: "demo".into(),
        exp: now.as_secs() + 3600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: None,
    }
    .sign_hs256(secret)
    .expect("sign")
}

/// Runs a dev-mode gateway on loopback, gives its counters, histograms and
/// error counters samples (a publish delivered to a subscriber, a refused
/// token), and returns its `/metrics` text.
async fn scrape_a_busy_gateway() -> String {
    let data = tempfile::TempDir::new().expect("tempdir");
    let mut config = Config::default();
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    (config.server.listen, config.server.ops_listen) = (loopback, loopback);
    config.api.listen = loopback;
    config.server.data_dir = data.path().to_path_buf();
    config.server.shutdown_grace_ms = 1_000;
    let loaded = Loaded {
        config,
        dev: true,
        base: PathBuf::from("."),
    };
    let store = open_store(&loaded.config).await.expect("store");
    let gateway = bind(&loaded, store.store()).await.expect("bind");
    let (quic, ops, gateway_api) = (
        gateway.local_addr().expect("addr"),
        gateway.ops_addr().expect("ops"),
        gateway.api_addr().expect("api"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = gateway
            .run(async {
                let _ = stopped.await;
            })
            .await;
        store.close().await;
        result
    });

    // A loaded plugin, so the per-plugin series exist.
    let api = gateway_api;
    let admin = std::fs::read_to_string(quiver_server::tenants::admin_token_path(data.path()))
        .expect("admin token");
    let uploaded = reqwest::Client::new()
        .put(format!("http://{api}/v1/tenants/demo/plugins/30-enrich"))
        .bearer_auth(admin.trim())
        .body(crate::build::wasm("enricher"))
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status().as_u16(), 201, "the enricher uploads");

    let secret = quiver_server::tenants::dev_secret(data.path()).expect("dev secret");
    let ca = quiver_server::tls::dev_cert_path(data.path());
    let client_config = |token: String| {
        ClientConfig::new(quic.to_string(), token, Trust::CaPem(ca.clone()))
            .reconnect(Reconnect::disabled())
    };
    let client = Client::connect(client_config(token(&secret, "alice")))
        .await
        .expect("connect");
    let mut subscription = client
        .subscribe("deploy-check", None)
        .await
        .expect("subscribe");
    client.publish("deploy-check", "x").await.expect("publish");
    subscription.next().await.expect("open").expect("message");
    // A refused token: quiver_connection_errors_total{code} only has
    // samples once a connection was closed with an error.
    let refused = Client::connect(client_config(token(b"not-the-secret", "mallory"))).await;
    assert!(refused.is_err(), "a token with the wrong secret is refused");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let response = http_get(ops, "/metrics").await;
        let families = scraped_families(&response);
        if [
            "quiver_messages_delivered_total",
            "quiver_connection_errors_total",
        ]
        .iter()
        .all(|name| families.contains_key(*name))
        {
            break response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never showed the delivery and the refused connection:\n{response}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    client.close().await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("gateway stops")
        .expect("gateway task")
        .expect("gateway result");
    text
}

/// Series Prometheus makes itself for every target; the gateway cannot
/// export them.
const PROMETHEUS_SERIES: &[&str] = &["up", "scrape_duration_seconds", "scrape_samples_scraped"];
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_query_only_metrics_the_gateway_exports() {
    let mut queries = dashboard_queries(&dashboard());
    let dashboard_count = queries.len();
    queries.extend(alert_queries(&yaml("prometheus/alerts.yml")));
    assert!(dashboard_count >= 10, "the dashboard has its panels");
    assert!(queries.len() > dashboard_count, "alerts.yml has rules");

    let scraped = scraped_families(&scrape_a_busy_gateway().await);
    let error_codes: BTreeSet<&str> = quiver_proto::fb::ErrorCode::ENUM_VALUES
        .iter()
        .filter_map(|code| code.variant_name())
        .collect();

    let mut problems = Vec::new();
    for (source, expr) in &queries {
        let found = selectors(expr);
        if found.is_empty() {
            problems.push(format!("{source}: no metric found in `{expr}`"));
        }
        for selector in found {
            let Selector { metric, matchers } = &selector;
            let labels = match scraped.get(metric) {
                Some(labels) => labels,
                None if PROMETHEUS_SERIES.contains(&metric.as_str()) => &BTreeSet::new(),
                None => {
                    problems.push(format!(
                        "{source}: `{metric}` is not exported by the gateway (in `{expr}`)"
                    ));
                    continue;
                }
            };
            for (label, value) in matchers {
                if !TARGET_LABELS.contains(&label.as_str()) && !labels.contains(label) {
                    problems.push(format!("{source}: `{metric}` has no label `{label}`"));
                }
                if metric == "quiver_connection_errors_total" && label == "code" {
                    for code in value.split('|') {
                        if !error_codes.contains(code) {
                            problems.push(format!("{source}: `{code}` is not an ErrorCode"));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
