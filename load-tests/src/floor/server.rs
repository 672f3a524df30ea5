//! `quiver-load floor`: the transport-only equivalent of the gateway, on
//! bare quinn. It accepts connections (same TLS and transport settings),
//! answers `HELLO` on a connection's first stream, turns a `SUB` stream into
//! a subscription to its one channel, and for every `PUB` frame assigns
//! the next offset, fans the message out to every subscription stream and
//! acks it. No session, no auth, no store, no FlatBuffers: what is left is
//! what QUIC and TLS cost, which is the floor any gateway sits on.
//!
//! Fan-out mirrors the gateway's shape: one ring of `--channel-buffer`
//! messages (tokio broadcast) and one task per subscription that writes
//! everything queued for it in one call. A subscription that falls a whole
//! ring behind is reset (the gateway's `SlowConsumer`).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use clap::Args;
use tokio::sync::{Mutex, broadcast};

use super::frame::{self, Reader};
use super::tls;

/// Most bytes one subscription write gathers.
const WRITE_BATCH: usize = 64 * 1024;
/// The gateway's default UDP buffer size (`server.udp_socket_buffer_bytes`).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Flags of `quiver-load floor`.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// UDP address to listen on (port 0 picks one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4434")]
    pub listen: SocketAddr,
    /// PEM certificate chain (e.g. the gateway's DATA_DIR/tls/dev-cert.pem);
    /// default: a fresh self-signed one (clients then need --insecure).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Messages the fan-out ring holds (the gateway's `channel_buffer`).
    #[arg(long, default_value_t = 1024)]
    pub channel_buffer: usize,
    /// Idle timeout of connections, seconds (the gateway's default: 60).
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Stop after this many seconds (0 = run until killed).
    #[arg(long, default_value_t = 0)]
    pub exit_after: u64,
}

/// The one channel.
#[derive(Debug)]
struct Channel {
    /// Last assigned offset; the lock also keeps ring order = offset order.
    head: Mutex<u64>,
    ring: broadcast::Sender<Bytes>,
    slow: AtomicU64,
}

/// Runs the floor until killed (or `--exit-after`).
pub async fn run(args: &FloorArgs) -> anyhow::Result<()> {
    let endpoint = bind(args)?;
    let addr = endpoint.local_addr()?;
    // Scripts wait for this line.
    println!("floor listening on {addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let serve = serve(endpoint, args.channel_buffer);
    if args.exit_after > 0 {
        let _ = tokio::time::timeout(Duration::from_secs(args.exit_after), serve).await;
    } else {
        serve.await;
    }
    Ok(())
}

/// The floor's endpoint on `args.listen`.
pub fn bind(args: &FloorArgs) -> anyhow::Result<quinn::Endpoint> {
    let (chain, key) = tls::identity(args.cert.as_deref(), args.key.as_deref())?;
    let config = tls::server_config(chain, key, Duration::from_secs(args.idle_timeout.max(1)))?;
    let socket =
        UdpSocket::bind(args.listen).with_context(|| format!("cannot bind UDP {}", args.listen))?;
    if let Ok(state) = quinn::udp::UdpSocketState::new((&socket).into()) {
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
    }
    let runtime = quinn::default_runtime().context("no async runtime")?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        socket,
        runtime,
    )
    .context("cannot start the floor endpoint")
}

/// Accepts connections until the endpoint closes.
pub async fn serve(endpoint: quinn::Endpoint, channel_buffer: usize) {
    let (ring, _) = broadcast::channel(channel_buffer.max(1));
    let channel = Arc::new(Channel {
        head: Mutex::new(0),
        ring,
        slow: AtomicU64::new(0),
    });
    while let Some(incoming) = endpoint.accept().await {
        let channel = Arc::clone(&channel);
        tokio::spawn(async move {
            if let Ok(connection) = incoming.await {
                serve_connection(connection, channel).await;
            }
        });
    }
}

async fn serve_connection(connection: quinn::Connection, channel: Arc<Channel>) {
    while let Ok((send, recv)) = connection.accept_bi().await {
        tokio::spawn(serve_stream(send, recv, Arc::clone(&channel)));
    }
}

/// One stream: its first frame says what it is.
async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    channel: Arc<Channel>,
) {
    let mut reader = Reader::default();
    let first = loop {
        match reader.next_frame() {
            Ok(Some(frame)) => break frame,
            Ok(None) => {}
            Err(_) => return,
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => reader.feed(&chunk.bytes),
            _ => return,
        }
    };
    match first.0 {
        frame::HELLO => {
            if send
                .write_all(&frame::encode(frame::WELCOME, b""))
                .await
                .is_err()
            {
                return;
            }
            // The control stream stays open, idle, like the gateway's.
            while let Ok(Some(_)) = recv.read_chunk(64 * 1024, true).await {}
        }
        frame::SUB => subscription(send, &channel).await,
        frame::PUB => publishing(send, recv, reader, first.1, &channel).await,
        _ => {}
    }
}

/// Writes every message from now on to `send`.
async fn subscription(mut send: quinn::SendStream, channel: &Channel) {
    let mut rx = {
        // Under the lock: the head and the ring position agree.
        let head = channel.head.lock().await;
        let rx = channel.ring.subscribe();
        let reply = frame::encode_u64(frame::SUBSCRIBED, *head);
        drop(head);
        if send.write_all(&reply).await.is_err() {
            return;
        }
        rx
    };
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    loop {
        match rx.recv().await {
            Ok(first) => batch.push(first),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                channel.slow.fetch_add(1, Ordering::Relaxed);
                let _ = send.reset(1u32.into());
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
        let mut bytes = batch[0].len();
        while bytes < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    bytes += more.len();
                    batch.push(more);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    channel.slow.fetch_add(1, Ordering::Relaxed);
                    let _ = send.reset(1u32.into());
                    return;
                }
                Err(_) => break,
            }
        }
        if send.write_all_chunks(&mut batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// Publishes each `PUB` frame and acks it, acks of one read in one write.
async fn publishing(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut reader: Reader,
    first: Bytes,
    channel: &Channel,
) {
    let mut acks = BytesMut::new();
    let mut pending = Some(first);
    loop {
        if let Some(payload) = pending.take() {
            let offset = publish(channel, &payload).await;
            frame::put(&mut acks, frame::ACK, &[&offset.to_le_bytes()]);
        }
        match reader.next_frame() {
            Ok(Some((frame::PUB, payload))) => {
                pending = Some(payload);
                continue;
            }
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        if !acks.is_empty() && send.write_all(&acks.split()).await.is_err() {
            return;
        }
        match recv.read_chunk(256 * 1024, true).await {
            Ok(Some(chunk)) => reader.feed(&chunk.bytes),
            _ => return,
        }
    }
}

async fn publish(channel: &Channel, payload: &[u8]) -> u64 {
    let mut head = channel.head.lock().await;
    *head += 1;
    // No receivers is fine: nobody subscribed yet.
    let _ = channel.ring.send(frame::message(*head, payload));
    *head
}
