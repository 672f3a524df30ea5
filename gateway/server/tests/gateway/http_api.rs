//! The server-side publish API: a backend publishes over HTTP (HTTP/1.1 on
//! the API listener, HTTP/3 on the gateway's UDP port) and phones receive
//! it live over QUIC, then read it in history.

mod http3;
mod openapi;

use std::time::Duration;

use quiver_client::{HistoryQuery, Message, Subscription};
use serde_json::{Value, json};

use crate::support::{ChildServer, FAST, TestServer};

const ACME_KEY: &str = "acme-api-key-0123456789";
const GLOBEX_KEY: &str = "globex-api-key-0123456789";

/// Two tenants with API keys, small limits to test them cheaply.
fn two_tenants_with_keys() -> String {
    format!(
        r#"{FAST}
[api]
max_body_bytes = 8192
max_batch_messages = 5

[[tenants]]
id = "acme"
hs256_secret = "acme-test-secret-0123456789abcdef"
api_keys = ["{ACME_KEY}"]
limits = {{ max_payload_bytes = 1024 }}

[[tenants]]
id = "globex"
hs256_secret = "globex-test-secret-0123456789abcd"
api_keys = ["{GLOBEX_KEY}"]
"#
    )
}

pub fn dev_key(server: &TestServer) -> String {
    quiver_server::tenants::dev_api_key(server.data.path()).expect("dev API key")
}

/// One HTTP/1.1 request to the API listener; returns the status, the
/// headers and the JSON body (Null when it is not JSON).
pub async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut request =
        reqwest::Client::new().request(method, format!("http://{}{path}", server.api));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn post(server: &TestServer, path: &str, key: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = call(
        server,
        "POST",
        path,
        Some(key),
        Some(body.to_string().into()),
    )
    .await;
    (status, body)
}

async fn get(server: &TestServer, path: &str, key: &str) -> (u16, Value) {
    let (status, _, body) = call(server, "GET", path, Some(key), None).await;
    (status, body)
}

pub async fn next(subscription: &mut Subscription) -> Message {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("message")
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_publishes_and_phones_receive_it_live_then_in_history() {
    let server = TestServer::start(FAST).await;
    let key = dev_key(&server);
    let phone = server.client("demo", "alice").await;
    let mut room = phone.subscribe("room:1", None).await.expect("subscribe");

    let (status, ack) = post(
        &server,
        "/v1/channels/room:1/messages",
        &key,
        json!({"payload": "order shipped", "headers": {"kind": "status"}, "idempotency_key": "order-7"}),
    )
    .await;
    assert_eq!(status, 201, "{ack}");
    assert_eq!(ack["channel"], "room:1");
    assert_eq!(ack["offset"], 1);
    assert_eq!(ack["duplicate"], false);
    let id = ack["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 26, "a ULID: {id}");

    let live = next(&mut room).await;
    assert_eq!(live.offset, 1);
    assert_eq!(&live.payload[..], b"order shipped");
    assert_eq!(live.sender, "api");
    assert_eq!(
        live.headers,
        vec![("kind".to_string(), "status".to_string())]
    );
    assert_eq!(quiver_server::api::json::ulid_string(live.id), id);

    // A retry with the same idempotency key writes nothing new.
    let (status, again) = post(
        &server,
        "/v1/channels/room:1/messages",
        &key,
        json!({"payload": "order shipped", "idempotency_key": "order-7"}),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        (again["offset"].clone(), again["duplicate"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(again["id"], id.as_str());

    let (status, _) = post(
        &server,
        "/v1/channels/room:1/messages",
        &key,
        json!({"payload_base64": "AP8="}),
    )
    .await;
    assert_eq!(status, 201);
    let binary = next(&mut room).await;
    assert_eq!(binary.offset, 2, "the duplicate was not delivered");
    assert_eq!(&binary.payload[..], [0, 255]);

    let (status, page) = get(&server, "/v1/channels/room:1/messages", &key).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["has_more"], false);
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["offset"], 2, "newest first");
    assert_eq!(messages[0]["payload_base64"], "AP8=");
    assert_eq!(messages[1]["payload"], "order shipped");
    assert_eq!(messages[1]["sender"], "api");
    assert_eq!(messages[1]["id"], id.as_str());
    assert_eq!(messages[1]["headers"], json!({"kind": "status"}));
    assert!(messages[1]["timestamp_ms"].as_u64().is_some_and(|t| t > 0));

    let (_, page) = get(
        &server,
        "/v1/channels/room:1/messages?direction=forward&limit=1",
        &key,
    )
    .await;
    assert_eq!(page["messages"][0]["offset"], 1);
    assert_eq!(page["has_more"], true);
    let (_, page) = get(&server, "/v1/channels/room:1/messages?before=2", &key).await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["messages"][0]["offset"], 1);

    // Phones see the same history over QUIC.
    let history = phone
        .history("room:1", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_publishes_in_order_across_channels() {
    let server = TestServer::start(&two_tenants_with_keys()).await;
    let phone = server.client("acme", "alice").await;
    let mut a = phone.subscribe("a", None).await.expect("subscribe");
    let (status, body) = post(
        &server,
        "/v1/messages/batch",
        ACME_KEY,
        json!({"messages": [
            {"channel": "a", "payload": "one"},
            {"channel": "b", "payload": "two", "idempotency_key": "k2"},
            {"channel": "a", "payload": "three"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failed"], 0);
    let results = body["results"].as_array().expect("results");
    let summary: Vec<(Value, Value)> = results
        .iter()
        .map(|r| (r["channel"].clone(), r["offset"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("a"), json!(1)),
            (json!("b"), json!(1)),
            (json!("a"), json!(2))
        ]
    );
    assert_eq!(&next(&mut a).await.payload[..], b"one");
    assert_eq!(&next(&mut a).await.payload[..], b"three");

    // One bad item refuses the whole batch, naming the item; nothing is written.
    let (status, body) = post(
        &server,
        "/v1/messages/batch",
        ACME_KEY,
        json!({"messages": [{"channel": "a", "payload": "x"}, {"channel": "bad name", "payload": "y"}]}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_channel"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("messages[1]")
    );
    let (_, page) = get(&server, "/v1/channels/a/messages", ACME_KEY).await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(2));

    let six: Vec<Value> = (0..6)
        .map(|i| json!({"channel": "a", "payload": format!("{i}")}))
        .collect();
    let (status, body) = post(
        &server,
        "/v1/messages/batch",
        ACME_KEY,
        json!({"messages": six}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (413, "batch_too_large"),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/v1/messages/batch",
        ACME_KEY,
        json!({"messages": []}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_codes() {
    let server = TestServer::start(&two_tenants_with_keys()).await;
    let publish = "/v1/channels/c/messages";
    let hello = || Some(json!({"payload": "hi"}).to_string().into_bytes());

    for key in [None, Some("wrong-key-0123456789"), Some("")] {
        let (status, headers, body) = call(&server, "POST", publish, key, hello()).await;
        assert_eq!(
            (status, error_code(&body)),
            (401, "unauthorized"),
            "{key:?}: {body}"
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    // The admin token is not an API key.
    let admin =
        std::fs::read_to_string(quiver_server::tenants::admin_token_path(server.data.path()))
            .expect("admin token");
    let (status, _, _) = call(&server, "GET", publish, Some(admin.trim()), None).await;
    assert_eq!(status, 401);

    let key = Some(ACME_KEY);
    let (status, _, body) = call(
        &server,
        "POST",
        "/v1/channels/has%20space/messages",
        key,
        hello(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_channel"),
        "{body}"
    );
    let long = format!("/v1/channels/{}/messages", "x".repeat(256));
    let (status, _, body) = call(&server, "GET", &long, key, None).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_channel"),
        "{body}"
    );

    let (status, _, body) = call(&server, "POST", publish, key, Some(b"{not json".to_vec())).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    let (status, _, body) = call(&server, "POST", publish, key, Some(b"{}".to_vec())).await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"), "{body}");

    // Bodies over api.max_body_bytes (8 KiB here) are refused unread.
    let huge = json!({"payload": "x".repeat(10_000)})
        .to_string()
        .into_bytes();
    let (status, _, body) = call(&server, "POST", publish, key, Some(huge)).await;
    assert_eq!((status, error_code(&body)), (413, "too_large"), "{body}");
    // Payloads over the tenant's max_payload_bytes (1 KiB for acme).
    let big = json!({"payload": "x".repeat(2_000)})
        .to_string()
        .into_bytes();
    let (status, _, body) = call(&server, "POST", publish, key, Some(big.clone())).await;
    assert_eq!(
        (status, error_code(&body)),
        (413, "payload_too_large"),
        "{body}"
    );
    let (status, _, _) = call(&server, "POST", publish, Some(GLOBEX_KEY), Some(big)).await;
    assert_eq!(status, 201, "globex keeps the server's 64 KiB limit");

    for query in [
        "limit=0",
        "direction=sideways",
        "before=minus-one",
        "colour=red",
    ] {
        let path = format!("{publish}?{query}");
        let (status, _, body) = call(&server, "GET", &path, key, None).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "bad_request"),
            "{query}: {body}"
        );
    }
    let (status, _, body) = call(&server, "DELETE", publish, key, None).await;
    assert_eq!(
        (status, error_code(&body)),
        (405, "method_not_allowed"),
        "{body}"
    );
    let (status, _, body) = call(&server, "GET", "/v1/channels", key, None).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reaches_only_its_own_tenant() {
    let server = TestServer::start(&two_tenants_with_keys()).await;
    let (status, _) = post(
        &server,
        "/v1/channels/room/messages",
        ACME_KEY,
        json!({"payload": "acme only"}),
    )
    .await;
    assert_eq!(status, 201);

    // Globex's key names globex's own channel "room": acme's message is not there.
    let (status, page) = get(&server, "/v1/channels/room/messages", GLOBEX_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"], json!([]));
    let (_, ack) = post(
        &server,
        "/v1/channels/room/messages",
        GLOBEX_KEY,
        json!({"payload": "globex"}),
    )
    .await;
    assert_eq!(ack["offset"], 1, "a separate log");

    let (_, page) = get(&server, "/v1/channels/room/messages", ACME_KEY).await;
    let payloads: Vec<&Value> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["payload"])
        .collect();
    assert_eq!(payloads, vec!["acme only"]);
    // And a phone of acme never sees globex's message.
    let phone = server.client("acme", "alice").await;
    let history = phone
        .history("room", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 1);
}

/// The README's example: `quiver apikey` prints the dev tenant's key and a
/// backend publishes with it to a real `quiver serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiver_apikey_prints_a_key_that_publishes() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let server = ChildServer::spawn(dir.path(), None).await;
    let data = dir.path().join("data");
    let out = quiver(&[
        "apikey",
        "--data-dir",
        &data.display().to_string(),
        "--tenant",
        "demo",
    ])
    .await;
    let key = out.trim();
    assert!(key.len() >= 32, "{key}");
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/channels/room1/messages", server.api))
        .bearer_auth(key)
        .json(&json!({"payload": "hello from the backend"}))
        .send()
        .await
        .expect("publish");
    assert_eq!(response.status().as_u16(), 201);
    let page: Value = reqwest::Client::new()
        .get(format!("http://{}/v1/channels/room1/messages", server.api))
        .bearer_auth(key)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("JSON");
    assert_eq!(page["messages"][0]["payload"], "hello from the backend");

    // With a config, the tenant's first key (files after inline keys).
    std::fs::write(dir.path().join("acme.apikey"), "acme-file-key-0123456789\n").expect("key file");
    let config = dir.path().join("quiver.toml");
    std::fs::write(
        &config,
        "[[tenants]]\nid = \"acme\"\nhs256_secret = \"s\"\napi_key_files = [\"acme.apikey\"]\n",
    )
    .expect("config");
    let out = quiver(&[
        "apikey",
        "--config",
        &config.display().to_string(),
        "--tenant",
        "acme",
    ])
    .await;
    assert_eq!(out.trim(), "acme-file-key-0123456789");
}

/// Runs the `quiver` binary; returns its stdout, failing on a non-zero exit.
async fn quiver(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("quiver finishes")
    .expect("quiver runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}
