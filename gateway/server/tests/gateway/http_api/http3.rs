//! The publish API over HTTP/3 on the gateway's UDP port, called with a
//! real HTTP/3 client (h3 over quinn).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use serde_json::{Value, json};

use super::{dev_key, error_code, next};
use crate::support::{FAST, TestServer};

/// A real HTTP/3 client (h3 over quinn) trusting the dev certificate.
struct H3Client {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    connection: quinn::Connection,
    driver: tokio::task::JoinHandle<()>,
    _endpoint: quinn::Endpoint,
}

impl H3Client {
    async fn connect(addr: SocketAddr, ca: &Path) -> H3Client {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
            roots.add(cert.expect("PEM")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connection = endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection.clone()))
            .await
            .expect("HTTP/3 connection");
        let driver = tokio::spawn(async move {
            let _ = futures::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        H3Client {
            send,
            connection,
            driver,
            _endpoint: endpoint,
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(())
            .expect("request");
        let exchange = async {
            let mut stream = self.send.send_request(request).await.expect("send request");
            // A server may answer before reading the whole body (413) and
            // stop the upload: like any HTTP client, read the answer anyway.
            let sent = match body {
                Some(body) => stream.send_data(Bytes::from(body.to_string())).await,
                None => Ok(()),
            };
            if sent.is_ok() {
                let _ = stream.finish().await;
            }
            let response = stream.recv_response().await.expect("response");
            let mut bytes = Vec::new();
            while let Some(mut chunk) = stream.recv_data().await.expect("body") {
                bytes.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
            }
            (
                response.status().as_u16(),
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("HTTP/3 answer in time")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_api_over_http3_on_the_quic_port() {
    let server = TestServer::start(FAST).await;
    let key = dev_key(&server);
    let phone = server.client("demo", "alice").await;
    let mut room = phone.subscribe("room", None).await.expect("subscribe");

    let mut h3 = H3Client::connect(server.addr, &server.ca()).await;
    let (status, ack) = h3
        .request(
            "POST",
            "/v1/channels/room/messages",
            &key,
            Some(json!({"payload": "over h3", "idempotency_key": "h3-1"})),
        )
        .await;
    assert_eq!(status, 201, "{ack}");
    assert_eq!(ack["offset"], 1);
    let live = next(&mut room).await;
    assert_eq!(
        (&live.payload[..], live.sender.as_str()),
        (&b"over h3"[..], "api")
    );

    let (status, again) = h3
        .request(
            "POST",
            "/v1/channels/room/messages",
            &key,
            Some(json!({"payload": "over h3", "idempotency_key": "h3-1"})),
        )
        .await;
    assert_eq!((status, again["duplicate"].clone()), (201, json!(true)));
    let (status, page) = h3
        .request("GET", "/v1/channels/room/messages", &key, None)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["payload"], "over h3");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));

    // Errors are the same JSON; the admin API is not on the public port.
    let (status, body) = h3
        .request(
            "GET",
            "/v1/channels/room/messages",
            "wrong-key-0123456789",
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    let admin =
        std::fs::read_to_string(quiver_server::tenants::admin_token_path(server.data.path()))
            .expect("admin token");
    let (status, _) = h3
        .request("GET", "/v1/tenants/demo/plugins", admin.trim(), None)
        .await;
    assert_eq!(status, 404);
    let huge = json!({"payload": "x".repeat(2 << 20)});
    let (status, body) = h3
        .request("POST", "/v1/channels/room/messages", &key, Some(huge))
        .await;
    assert_eq!((status, error_code(&body)), (413, "too_large"), "{body}");

    // Quiver clients on the same port are unaffected, and shutdown does not
    // wait on the open HTTP/3 connection.
    phone
        .publish("room", "from the phone")
        .await
        .expect("publish");
    assert_eq!(next(&mut room).await.offset, 2);
    tokio::time::timeout(Duration::from_secs(15), server.stop())
        .await
        .expect("the gateway stops with an HTTP/3 client connected");
    let closed = tokio::time::timeout(Duration::from_secs(5), h3.connection.closed()).await;
    assert!(closed.is_ok(), "the server closed the HTTP/3 connection");
    h3.driver.abort();
}
