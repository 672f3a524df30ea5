//! The one error type of the client, every variant saying what to do next.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quiver_proto::{DecodeError, fb};

/// The wire error code of a refusal, re-exported so users need not depend on
/// `quiver-proto` to match on it (`ErrorCode::RateLimited`, ...).
pub use quiver_proto::fb::ErrorCode;

/// Everything that can go wrong in the client.
///
/// Cloneable because one failure (a lost connection, a rejected token) is
/// reported to every caller and subscription waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The `host:port` string could not be understood or resolved.
    #[error(
        "invalid server address {server:?}: {reason}; use host:port, e.g. localhost:4433 or [::1]:4433"
    )]
    InvalidAddress {
        /// The address as configured.
        server: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A config value is out of range.
    #[error("invalid client config: {0}")]
    InvalidConfig(String),

    /// The CA file could not be read or holds no certificate.
    #[error("cannot load CA certificates from {}: {detail}; pass a PEM file with the server's CA (or self-signed) certificate", path.display())]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// Why it was rejected.
        detail: String,
    },

    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}; check the CA certificate")]
    Tls(#[from] rustls::Error),

    /// The local UDP socket could not be opened.
    #[error(
        "cannot bind UDP socket {addr}: {source}; pick a free local address or leave bind unset"
    )]
    Bind {
        /// The address that was requested.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: Arc<std::io::Error>,
    },

    /// quinn refused to start the connection (bad server name, endpoint
    /// stopping, address family mismatch).
    #[error(
        "cannot start a connection to {server}: {source}; check the address and the endpoint's address family"
    )]
    Connect {
        /// The configured server address.
        server: String,
        /// quinn's reason.
        source: quinn::ConnectError,
    },

    /// The QUIC connection failed or was closed by the peer. A TLS failure
    /// during the handshake (unknown CA, wrong server name, ALPN mismatch)
    /// shows up here as a transport error.
    #[error(
        "QUIC connection failed: {0}; check that the server is up, the address, and the CA certificate"
    )]
    Connection(#[from] quinn::ConnectionError),

    /// Something took longer than its configured bound.
    #[error(
        "{what} timed out after {after:?}; the server may be down or overloaded, or raise the timeout"
    )]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The bound that expired.
        after: Duration,
    },

    /// The server answered Hello with something other than Welcome or Error.
    #[error("handshake failed: {0}; is this a Quiver server speaking quiver/1?")]
    Handshake(String),

    /// The server refused a request (or the whole connection).
    #[error("server refused with {}: {message}{}", code_name(*code), hint(*code, *retryable, *retry_after))]
    Server {
        /// The wire error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
        /// Whether the server closed the connection after this error.
        fatal: bool,
        /// How long to wait before retrying, when the server said.
        retry_after: Option<Duration>,
    },

    /// A request would exceed the server's `max_frame_bytes`; refused
    /// locally because the server closes the whole connection over it.
    #[error(
        "request of {size} bytes exceeds the server's frame limit of {max} bytes; send a smaller payload or fewer headers"
    )]
    RequestTooLarge {
        /// Size of the request (frame or its variable fields) in bytes.
        size: usize,
        /// The server's `Welcome.max_frame_bytes`.
        max: usize,
    },

    /// The server sent bytes that are not valid Quiver frames.
    #[error("the server sent an invalid frame: {0}; this is a server bug, report it")]
    Protocol(#[from] DecodeError),

    /// The server sent a valid frame where the protocol does not allow it.
    #[error("the server broke the protocol: {0}; this is a server bug, report it")]
    UnexpectedFrame(String),

    /// A stream read or write failed while the connection stayed up.
    #[error("stream I/O failed: {0}; the request may be retried")]
    Io(String),

    /// The client was closed (by `close()`, or because it gave up
    /// reconnecting) and can no longer be used.
    #[error("the client is closed; create a new one with Client::connect")]
    Closed,

    /// The connection dropped and reconnecting is disabled or gave up.
    #[error("connection lost ({cause}); reconnecting {}", if *.gave_up { "gave up" } else { "is disabled" })]
    ConnectionLost {
        /// Why the last connection ended.
        cause: Box<ClientError>,
        /// True when the reconnect policy ran out of attempts.
        gave_up: bool,
    },
}

/// Whether a connection closed with `code` may succeed when retried, for
/// closes whose `Error` frame was overtaken (per the protocol's error
/// table). Codes from a newer server count as retryable: backoff still
/// keeps the retries slow.
pub(crate) fn close_code_retryable(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::MalformedFrame
            | ErrorCode::TruncatedFrame
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnknownFrame
            | ErrorCode::UnexpectedFrame
            | ErrorCode::InvalidUtf8
            | ErrorCode::UnsupportedVersion
            | ErrorCode::Unauthorized
            | ErrorCode::TokenExpired
    )
}

fn code_name(code: ErrorCode) -> String {
    match code.variant_name() {
        Some(name) => name.to_owned(),
        None => format!("error code {}", code.0),
    }
}

fn hint(code: ErrorCode, retryable: bool, retry_after: Option<Duration>) -> String {
    match (code, retry_after) {
        (ErrorCode::Unauthorized | ErrorCode::TokenExpired, _) => {
            "; get a fresh token and connect again".to_owned()
        }
        (_, Some(after)) => format!("; retry after {after:?}"),
        _ if retryable => "; retry later".to_owned(),
        _ => String::new(),
    }
}

impl ClientError {
    /// The wire code of a server refusal, if this is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            Self::ConnectionLost { cause, .. } => cause.code(),
            _ => None,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Server { retryable, .. } => *retryable,
            Self::Timeout { .. } | Self::Io(_) | Self::Connection(_) => true,
            _ => false,
        }
    }

    /// How long the server asked to wait before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for refusals that no reconnect can fix: the token is bad or
    /// expired, or the server does not speak our protocol version.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::Unauthorized | ErrorCode::TokenExpired | ErrorCode::UnsupportedVersion)
        )
    }

    /// Whether a new connection may fix this. Fatal refusals the server
    /// marks non-retryable (bad token, unsupported version, a frame it
    /// rejected) would be hit again, so the client stops instead of
    /// reconnecting into them.
    pub(crate) fn allows_reconnect(&self) -> bool {
        !matches!(
            self,
            Self::Server {
                fatal: true,
                retryable: false,
                ..
            } | Self::Handshake(_)
        )
    }

    /// Builds the error for a wire `Error` frame.
    pub(crate) fn from_frame(e: &fb::Error<'_>) -> Self {
        Self::Server {
            code: e.code(),
            message: e.message().unwrap_or_default().to_owned(),
            retryable: e.retryable(),
            fatal: e.fatal(),
            retry_after: (e.retry_after_ms() > 0)
                .then(|| Duration::from_millis(e.retry_after_ms().into())),
        }
    }

    pub(crate) fn io(e: impl std::fmt::Display) -> Self {
        Self::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e = ClientError::Server {
            code: ErrorCode::TokenExpired,
            message: "exp in the past".into(),
            retryable: false,
            fatal: true,
            retry_after: None,
        };
        let text = e.to_string();
        assert!(
            text.contains("TokenExpired") && text.contains("fresh token"),
            "{text}"
        );
        assert!(e.is_auth_failure());

        let e = ClientError::Server {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            retryable: true,
            fatal: false,
            retry_after: Some(Duration::from_millis(250)),
        };
        assert!(e.to_string().contains("retry after 250ms"));
        assert_eq!(e.retry_after(), Some(Duration::from_millis(250)));
        assert!(!e.is_auth_failure());
    }

    #[test]
    fn unknown_codes_render_numerically() {
        assert_eq!(code_name(ErrorCode(999)), "error code 999");
    }
}
