use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{info, warn};

/// Binds the gateway's UDP socket with large kernel buffers. quinn reads
/// and writes every connection through this one socket, so its buffers are
/// what absorbs bursts; asking happens before binding, and what the kernel
/// granted (it caps at net.core.rmem_max / wmem_max) is logged.
pub fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Serve IPv4 clients too on [::], as operators expect of a wildcard.
        let _ = socket.set_only_v6(false);
    }
    if buffer_bytes > 0 {
        if let Err(error) = socket.set_recv_buffer_size(buffer_bytes) {
            warn!(%error, "cannot size the UDP receive buffer");
        }
        if let Err(error) = socket.set_send_buffer_size(buffer_bytes) {
            warn!(%error, "cannot size the UDP send buffer");
        }
    }
    socket.bind(&addr.into())?;
    let granted_recv = socket.recv_buffer_size().unwrap_or(0);
    let granted_send = socket.send_buffer_size().unwrap_or(0);
    info!(
        asked = buffer_bytes,
        recv = granted_recv,
        send = granted_send,
        "UDP socket buffers (raise net.core.rmem_max/wmem_max if lower than asked; see deploy/TUNING.md)"
    );
    Ok(socket.into())
}
