//! A scripted in-process Quiver server, just enough protocol to drive the
//! client's I/O shell over real loopback QUIC, plus fault injection
//! (connection kills, GoAway, SlowConsumer, a lost PublishAck).
//!
//! It is no stand-in for the real gateway: the suite against that one lives
//! with the server. This one exists to test reconnect and resume paths that
//! a healthy server rarely takes.

mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use quiver_client::{CertificateDer, ClientConfig, Reconnect, Trust};
use quiver_proto::{Body, Encoder, FrameReader, WelcomeInfo, decode, fb};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use session::Session;
use tokio::sync::mpsc;
use tokio::time::Duration;

/// Tokens the mock refuses.
pub(crate) const BAD_TOKEN: &str = "bad-token";

#[derive(Clone)]
pub(super) struct Stored {
    pub(super) offset: u64,
    pub(super) sender: String,
    pub(super) payload: Bytes,
    pub(super) headers: Vec<(String, String)>,
}

/// A directive for every live connection.
#[derive(Clone, Copy)]
enum Control {
    GoAway(u32),
    SlowConsumer,
    /// A second Welcome: a frame the client must treat as a violation.
    Unexpected,
}

#[derive(Default)]
pub(super) struct Hub {
    pub(super) channels: HashMap<String, Vec<Stored>>,
    pub(super) keys: HashMap<(String, String), u64>,
    pub(super) subscribers: Vec<(String, mpsc::UnboundedSender<Bytes>)>,
    connections: Vec<(quinn::Connection, mpsc::UnboundedSender<Control>)>,
    /// Store the next publish but kill the connection instead of acking.
    pub(super) lose_next_ack: bool,
    accepted: u64,
    pub(super) unsubscribes: u64,
}

pub(crate) struct MockServer {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: CertificateDer<'static>,
    hub: Arc<Mutex<Hub>>,
    _endpoint: quinn::Endpoint,
}

impl MockServer {
    pub(crate) async fn start() -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
        let cert = key.cert.der().clone();
        let private =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls13")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], private)
            .expect("server cert");
        tls.alpn_protocols = vec![quiver_proto::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("quic tls");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint =
            quinn::Endpoint::server(config, "127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = endpoint.local_addr().expect("local addr");
        let hub = Arc::new(Mutex::new(Hub::default()));
        let accept = endpoint.clone();
        let accept_hub = Arc::clone(&hub);
        tokio::spawn(async move {
            while let Some(incoming) = accept.accept().await {
                let hub = Arc::clone(&accept_hub);
                tokio::spawn(async move {
                    if let Ok(connection) = incoming.await {
                        serve(connection, hub).await;
                    }
                });
            }
        });
        Self {
            addr,
            cert,
            hub,
            _endpoint: endpoint,
        }
    }

    /// A client config trusting this server, with fast reconnects.
    pub(crate) fn config(&self, token: &str) -> ClientConfig {
        ClientConfig::new(
            self.addr.to_string(),
            token,
            Trust::CaDer(vec![self.cert.clone()]),
        )
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
        .reconnect(Reconnect {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..Reconnect::default()
        })
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().expect("hub")
    }

    /// Closes every connection abruptly, as a crashed node would.
    pub(crate) fn kill_connections(&self) {
        for (connection, _) in self.hub().connections.drain(..) {
            connection.close(0u32.into(), b"killed by test");
        }
    }

    pub(crate) fn go_away(&self, reconnect_after_ms: u32) {
        self.control(Control::GoAway(reconnect_after_ms));
    }

    pub(crate) fn slow_consumer(&self) {
        self.control(Control::SlowConsumer);
    }

    pub(crate) fn send_unexpected_frame(&self) {
        self.control(Control::Unexpected);
    }

    fn control(&self, control: Control) {
        for (_, tx) in &self.hub().connections {
            let _ = tx.send(control);
        }
    }

    pub(crate) fn lose_next_ack(&self) {
        self.hub().lose_next_ack = true;
    }

    /// Handshakes completed so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.hub().accepted
    }

    pub(crate) fn stored(&self, channel: &str) -> usize {
        self.hub().channels.get(channel).map_or(0, Vec::len)
    }

    pub(crate) fn unsubscribes(&self) -> u64 {
        self.hub().unsubscribes
    }
}

pub(super) fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().expect("hub")
}

async fn serve(connection: quinn::Connection, hub: Arc<Mutex<Hub>>) {
    let Ok((mut send, mut recv)) = connection.accept_bi().await else {
        return;
    };
    let mut reader = FrameReader::new(1 << 20);
    let mut enc = Encoder::new();
    let hello = match next(&mut recv, &mut reader).await {
        Some(frame) => frame,
        None => return,
    };
    let Ok(Body::Hello(hello)) = decode(&hello) else {
        connection.close(5u32.into(), b"expected Hello");
        return;
    };
    if hello.token() == Some(BAD_TOKEN) {
        let refusal = enc.error(0, fb::ErrorCode::Unauthorized, "bad token", false, true, 0);
        let _ = send.write_all(&refusal).await;
        connection.close(
            u32::from(fb::ErrorCode::Unauthorized.0).into(),
            b"unauthorized",
        );
        return;
    }
    let user = hello.token().unwrap_or_default().to_owned();
    let welcome = WelcomeInfo {
        version: quiver_proto::PROTOCOL_VERSION,
        session_id: format!("s{}", connection.stable_id()),
        user: user.clone(),
        max_frame_bytes: 1 << 20,
        ..WelcomeInfo::default()
    };
    if send.write_all(&enc.welcome(&welcome)).await.is_err() {
        return;
    }
    let (control_tx, mut controls) = mpsc::unbounded_channel();
    {
        let mut hub = lock(&hub);
        hub.accepted += 1;
        hub.connections.push((connection.clone(), control_tx));
    }
    let mut session = Session {
        connection: connection.clone(),
        hub,
        user,
        subs: HashMap::new(),
        next_sub: 1,
    };
    loop {
        tokio::select! {
            frame = next(&mut recv, &mut reader) => {
                let Some(frame) = frame else { return };
                let Some(reply) = session.handle(&mut enc, &frame).await else { return };
                if send.write_all(&reply).await.is_err() {
                    return;
                }
            }
            Some(control) = controls.recv() => match control {
                Control::GoAway(ms) => {
                    let _ = send.write_all(&enc.go_away(fb::ErrorCode::GoingAway, "restart", ms)).await;
                }
                Control::Unexpected => {
                    let _ = send.write_all(&enc.welcome(&WelcomeInfo::default())).await;
                }
                Control::SlowConsumer => {
                    let error = enc.error(0, fb::ErrorCode::SlowConsumer, "too slow", true, true, 0);
                    let _ = send.write_all(&error).await;
                    connection.close(u32::from(fb::ErrorCode::SlowConsumer.0).into(), b"slow consumer");
                    return;
                }
            },
        }
    }
}

async fn next(recv: &mut quinn::RecvStream, reader: &mut FrameReader) -> Option<Bytes> {
    loop {
        if let Some(frame) = reader.next_frame().ok()? {
            return Some(frame);
        }
        let chunk = recv.read_chunk(usize::MAX, true).await.ok()??;
        reader.push_bytes(chunk.bytes);
    }
}
