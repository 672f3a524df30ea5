//! The QUIC transport: one quinn endpoint, ALPN `quiver/1`. It only moves
//! bytes: client bidirectional streams become lanes of frames for the
//! session, and each subscription gets a server unidirectional stream so a
//! stalled channel never blocks another (no head-of-line blocking across
//! channels). Connections that negotiate ALPN `h3` instead are served the
//! HTTP publish API over HTTP/3 ([`H3App`]).

mod config;
mod h3;
mod lanes;
mod socket;
mod transport;

pub use self::h3::{ALPN_H3, H3App};
pub use config::endpoint_config;
pub use socket::bind_udp;
pub(crate) use transport::accept;
