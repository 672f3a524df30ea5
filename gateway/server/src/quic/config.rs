use std::sync::Arc;

use anyhow::Context as _;
use quiver_session::Limits;

/// Client-opened bidirectional streams a connection may hold open at once
/// (the control stream plus request lanes).
const MAX_LANES: u32 = 8;

/// Bytes of datagrams buffered per connection, in each direction.
const DATAGRAM_BUFFER: usize = 64 * 1024;

/// The quinn server config, tuned for many mostly-idle mobile connections:
/// small bounded windows (memory is only committed as data flows), no
/// server-driven keep-alives (the client decides how often its radio wakes),
/// small datagram buffers (positions), and connection migration on, so a phone that changes networks keeps its
/// connection.
pub fn endpoint_config(
    tls: Arc<rustls::ServerConfig>,
    limits: &Limits,
) -> anyhow::Result<quinn::ServerConfig> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .context("TLS config is not usable for QUIC (needs TLS 1.3)")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(MAX_LANES.into())
        // Clients never open unidirectional streams in protocol v1.
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(Some(
            limits
                .idle_timeout
                .try_into()
                .context("idle timeout is out of range")?,
        ))
        .stream_receive_window((256u32 * 1024).into())
        .receive_window((1024u32 * 1024).into())
        .send_window(2 * 1024 * 1024)
        .keep_alive_interval(None)
        // Positions arrive as datagrams. Latest-wins data needs little
        // buffer: when it is full the oldest are dropped, which only loses
        // positions the next ones supersede.
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    server.transport_config(Arc::new(transport));
    server.migration(true);
    Ok(server)
}
