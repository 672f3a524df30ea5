//! The floor's thin clients: raw quinn, as little as a client can do, so
//! that the floor ratio compares the gateway plus the client library with
//! bare quinn on both sides. Clients share `--sockets` endpoints exactly
//! like the gateway clients do.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use quiver_client::Trust;

use super::frame::{self, Reader};
use super::tls;
use crate::common::Timeline;
use crate::live::Probe;
use crate::offsets::OffsetCheck;
use crate::payload::{self, Clock, Stamp};
use crate::scenarios::traffic::{publisher, subscriber};

/// Socket buffers of client endpoints, as the gateway clients ask for.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Endpoints and the shared config of floor clients.
#[derive(Debug)]
pub struct FloorPool {
    endpoints: Vec<quinn::Endpoint>,
    remote: SocketAddr,
    server_name: String,
    config: quinn::ClientConfig,
}

/// A connection with its open control stream, held idle.
#[derive(Debug)]
pub struct Held {
    pub connection: quinn::Connection,
    _send: quinn::SendStream,
    _recv: quinn::RecvStream,
}

impl FloorPool {
    pub async fn new(
        server: &str,
        trust: &Trust,
        sockets: usize,
        keepalive: Duration,
        idle_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let remote = tokio::net::lookup_host(server)
            .await
            .with_context(|| format!("cannot resolve {server}"))?
            .next()
            .with_context(|| format!("{server} resolves to no address"))?;
        let server_name = server
            .rsplit_once(':')
            .map_or(server, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let bind: SocketAddr = if remote.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoints = Vec::new();
        for _ in 0..sockets.max(1) {
            let socket =
                UdpSocket::bind(bind).with_context(|| format!("cannot bind UDP {bind}"))?;
            if let Ok(state) = quinn::udp::UdpSocketState::new((&socket).into()) {
                let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
                let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
            }
            let runtime = quinn::default_runtime().context("no async runtime")?;
            endpoints.push(quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                socket,
                runtime,
            )?);
        }
        Ok(Self {
            endpoints,
            remote,
            server_name,
            config: tls::client_config(trust, keepalive, idle_timeout)?,
        })
    }

    /// A QUIC connection (handshake done) on socket `index % sockets`.
    pub async fn connect(&self, index: usize) -> anyhow::Result<quinn::Connection> {
        let endpoint = &self.endpoints[index % self.endpoints.len()];
        let connecting = endpoint
            .connect_with(self.config.clone(), self.remote, &self.server_name)
            .context("cannot start a floor connection")?;
        tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .context("floor handshake timed out after 10 s")?
            .context("floor handshake failed")
    }

    /// Connects and does the HELLO/WELCOME exchange on a control stream,
    /// the transport-only equivalent of the gateway's Hello/Welcome.
    pub async fn hello(&self, index: usize) -> anyhow::Result<Held> {
        let connection = self.connect(index).await?;
        let (mut send, mut recv) = connection.open_bi().await?;
        send.write_all(&frame::encode(frame::HELLO, b"")).await?;
        let (kind, _) = read_frame(&mut recv, &mut Reader::default()).await?;
        if kind != frame::WELCOME {
            bail!("the floor answered HELLO with kind {kind}");
        }
        Ok(Held {
            connection,
            _send: send,
            _recv: recv,
        })
    }

    /// Closes every connection and waits briefly for the close frames.
    pub async fn close(&self, connections: impl IntoIterator<Item = quinn::Connection>) {
        for connection in connections {
            connection.close(0u32.into(), b"done");
        }
        let idle = futures::future::join_all(self.endpoints.iter().map(quinn::Endpoint::wait_idle));
        let _ = tokio::time::timeout(Duration::from_secs(2), idle).await;
    }
}

/// Reads until one whole frame is buffered.
async fn read_frame(
    recv: &mut quinn::RecvStream,
    reader: &mut Reader,
) -> anyhow::Result<(u8, bytes::Bytes)> {
    loop {
        if let Some(frame) = reader.next_frame()? {
            return Ok(frame);
        }
        match recv.read_chunk(64 * 1024, true).await? {
            Some(chunk) => reader.feed(&chunk.bytes),
            None => bail!("the floor closed the stream"),
        }
    }
}

/// A subscription on the floor: the stream and where it started.
#[derive(Debug)]
pub struct FloorSubscription {
    pub connection: quinn::Connection,
    recv: quinn::RecvStream,
    _send: quinn::SendStream,
    reader: Reader,
    pub head: u64,
}

/// Connects and subscribes.
pub async fn subscribe(pool: &FloorPool, index: usize) -> anyhow::Result<FloorSubscription> {
    let connection = pool.connect(index).await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&frame::encode(frame::SUB, b"")).await?;
    let mut reader = Reader::default();
    let (kind, body) = read_frame(&mut recv, &mut reader).await?;
    if kind != frame::SUBSCRIBED {
        bail!("the floor answered SUB with kind {kind}");
    }
    Ok(FloorSubscription {
        connection,
        recv,
        _send: send,
        reader,
        head: frame::read_u64(kind, &body)?,
    })
}

/// Reads a floor subscription like `traffic::subscriber::run` reads a
/// gateway one: latency from the payload stamp, the offset check, and a
/// stop once the announced last offset arrived (or the deadline passed).
pub async fn read_subscription(
    mut sub: FloorSubscription,
    clock: Clock,
    timeline: Timeline,
    mut target: tokio::sync::watch::Receiver<Option<u64>>,
    mut probe: Probe,
) -> subscriber::Outcome {
    let mut outcome = subscriber::Outcome::default();
    let mut check = OffsetCheck::new(sub.head);
    let mut deadline = std::pin::pin!(tokio::time::sleep_until(timeline.deadline.into()));
    let mut announced = std::pin::pin!(target.wait_for(Option::is_some));
    let mut last_offset: Option<u64> = None;
    'read: loop {
        loop {
            match sub.reader.next_frame() {
                Ok(Some((frame::MSG, body))) => {
                    let now = Instant::now();
                    let Ok(offset) = frame::read_u64(frame::MSG, &body) else {
                        break 'read;
                    };
                    outcome.delivered += 1;
                    check.observe(offset);
                    match payload::decode(&body[8..]) {
                        Some(stamp) => {
                            probe.record(clock.since(stamp.sent_nanos, now), now);
                            if timeline.measures(now) {
                                outcome.delivered_in_window += 1;
                            }
                        }
                        None => {
                            outcome.foreign += 1;
                            probe.count();
                        }
                    }
                }
                Ok(Some(_)) | Err(_) => {
                    outcome.failed = 1;
                    outcome.error = Some("the floor sent an unexpected frame".into());
                    break 'read;
                }
                Ok(None) => break,
            }
        }
        if last_offset.is_some_and(|last| check.last() >= last) {
            break;
        }
        tokio::select! {
            biased;
            chunk = sub.recv.read_chunk(256 * 1024, true) => match chunk {
                Ok(Some(chunk)) => sub.reader.feed(&chunk.bytes),
                Ok(None) => {
                    outcome.failed = 1;
                    outcome.error = Some("the floor ended the subscription".into());
                    break;
                }
                Err(error) => {
                    probe.error();
                    outcome.failed = 1;
                    outcome.error = Some(format!("floor subscription failed: {error}"));
                    break;
                }
            },
            announced = &mut announced, if last_offset.is_none() => match announced {
                Ok(value) => last_offset = Some((*value).unwrap_or_default()),
                Err(_) => break,
            },
            () = &mut deadline => break,
        }
    }
    outcome.last = check.last();
    outcome.offsets = check.tally();
    outcome
}

/// Publishes on one stream like `traffic::publisher::run`: on the same
/// schedule (or as fast as acks allow), at most `inflight` unacked,
/// acks read back in order.
pub async fn publish(
    connection: quinn::Connection,
    plan: publisher::Plan,
    mut probe: Probe,
) -> publisher::Outcome {
    let mut outcome = publisher::Outcome::default();
    let (mut send, mut recv) = match connection.open_bi().await {
        Ok(pair) => pair,
        Err(error) => {
            outcome.errors = 1;
            outcome.first_error = Some(error.to_string());
            return outcome;
        }
    };
    let start = plan.timeline.start + plan.phase;
    let stop = plan.timeline.measure_until;
    let mut in_flight: VecDeque<Instant> = VecDeque::new();
    let mut reader = Reader::default();
    let mut out = BytesMut::new();
    let mut failed = false;
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        // Queue everything due that the window allows, then write once.
        while in_flight.len() < plan.inflight {
            let next = match plan.rate {
                Some(rate) => publisher::due(start, rate, outcome.sent),
                None => now,
            };
            if next > now {
                break;
            }
            let stamp = Stamp {
                sent_nanos: plan.clock.nanos(next),
                publisher: plan.index,
                seq: outcome.sent,
            };
            let body = payload::encode(stamp, plan.size);
            frame::put(&mut out, frame::PUB, &[&body]);
            in_flight.push_back(next);
            outcome.sent += 1;
        }
        if !out.is_empty() && send.write_all(&out.split()).await.is_err() {
            failed = true;
            break;
        }
        let wake = match plan.rate {
            Some(rate) if in_flight.len() < plan.inflight => {
                publisher::due(start, rate, outcome.sent).min(stop)
            }
            _ => stop,
        };
        tokio::select! {
            chunk = recv.read_chunk(64 * 1024, true) => match chunk {
                Ok(Some(chunk)) => {
                    reader.feed(&chunk.bytes);
                    if settle(&mut reader, &mut in_flight, &mut outcome, &plan.timeline, &mut probe).is_err() {
                        failed = true;
                        break;
                    }
                }
                _ => { failed = true; break; }
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    if let Some(rate) = plan.rate {
        outcome.unsent =
            publisher::scheduled_before(start, rate, stop).saturating_sub(outcome.sent);
    }
    let deadline = plan.timeline.deadline;
    while !failed && !in_flight.is_empty() {
        match tokio::time::timeout_at(deadline.into(), recv.read_chunk(64 * 1024, true)).await {
            Ok(Ok(Some(chunk))) => {
                reader.feed(&chunk.bytes);
                if settle(
                    &mut reader,
                    &mut in_flight,
                    &mut outcome,
                    &plan.timeline,
                    &mut probe,
                )
                .is_err()
                {
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = send.finish();
    if !in_flight.is_empty() {
        outcome.errors += in_flight.len() as u64;
        probe.errors(in_flight.len() as u64);
        outcome
            .first_error
            .get_or_insert_with(|| "publishes unacked when the floor stream ended".into());
    }
    outcome
}

/// Accounts for every ACK buffered in `reader`.
fn settle(
    reader: &mut Reader,
    in_flight: &mut VecDeque<Instant>,
    outcome: &mut publisher::Outcome,
    timeline: &Timeline,
    probe: &mut Probe,
) -> anyhow::Result<()> {
    while let Some((kind, body)) = reader.next_frame()? {
        if kind != frame::ACK {
            bail!("unexpected frame kind {kind} on a publish stream");
        }
        let offset = frame::read_u64(kind, &body)?;
        let sent_at = in_flight.pop_front().context("an ACK for nothing")?;
        let now = Instant::now();
        outcome.acked += 1;
        outcome.max_offset = outcome.max_offset.max(offset);
        probe.record(now - sent_at, now);
        if timeline.measures(now) {
            outcome.acked_in_window += 1;
        }
    }
    Ok(())
}
