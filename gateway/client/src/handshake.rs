//! Opening one connection: QUIC + TLS, then Hello/Welcome on the control
//! stream. Used for the first connection and for every reconnect.

use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Body, Encoder, FrameReader, PROTOCOL_VERSION, WelcomeInfo, decode};

use crate::address::Target;
use crate::error::ClientError;
use crate::io::{ReadFailure, connection_error, next_frame, write_error};

/// What every connection attempt needs, fixed for the client's lifetime.
#[derive(Debug, Clone)]
pub(crate) struct ConnectParams {
    pub(crate) target: Target,
    pub(crate) quic: quinn::ClientConfig,
    pub(crate) token: String,
    pub(crate) client_name: String,
    pub(crate) connect_timeout: Duration,
    /// Largest frame accepted from the server (history pages can be big).
    pub(crate) max_frame_bytes: usize,
}

/// A connection that completed the handshake.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) connection: quinn::Connection,
    pub(crate) send: quinn::SendStream,
    pub(crate) recv: quinn::RecvStream,
    /// May already hold frames that followed Welcome.
    pub(crate) reader: FrameReader,
    pub(crate) welcome: WelcomeInfo,
}

/// Connects and handshakes within `connect_timeout`.
pub(crate) async fn establish(
    endpoint: &quinn::Endpoint,
    params: &ConnectParams,
) -> Result<Established, ClientError> {
    tokio::time::timeout(params.connect_timeout, attempt(endpoint, params))
        .await
        .map_err(|_| ClientError::Timeout {
            what: "connecting (QUIC, TLS and Hello)",
            after: params.connect_timeout,
        })?
}

async fn attempt(
    endpoint: &quinn::Endpoint,
    params: &ConnectParams,
) -> Result<Established, ClientError> {
    let addr = params.target.resolve(endpoint.local_addr().ok()).await?;
    let connection = endpoint
        .connect_with(params.quic.clone(), addr, &params.target.host)
        .map_err(|source| ClientError::Connect {
            server: params.target.server.clone(),
            source,
        })?
        .await
        .map_err(connection_error)?;
    match hello(&connection, params).await {
        Ok(established) => Ok(established),
        Err(e) => {
            // Tell the server why, unless it is the one that gave up.
            if !matches!(e, ClientError::Server { .. } | ClientError::Connection(_)) {
                connection.close(close_code(&e), b"handshake failed");
            }
            Err(e)
        }
    }
}

async fn hello(
    connection: &quinn::Connection,
    params: &ConnectParams,
) -> Result<Established, ClientError> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(connection_error)?;
    let frame = Encoder::new().hello(PROTOCOL_VERSION, &params.token, &params.client_name);
    send.write_all(&frame).await.map_err(write_error)?;
    let mut reader = FrameReader::new(params.max_frame_bytes);
    let frame = match next_frame(&mut recv, &mut reader).await {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            return Err(ClientError::Handshake(
                "the server finished the control stream without answering Hello".into(),
            ));
        }
        Err(ReadFailure::Connection(e)) => return Err(connection_error(e)),
        Err(e) => return Err(e.into_error()),
    };
    let welcome = welcome(&frame)?;
    Ok(Established {
        connection: connection.clone(),
        send,
        recv,
        reader,
        welcome,
    })
}

fn welcome(frame: &Bytes) -> Result<WelcomeInfo, ClientError> {
    match decode(frame)? {
        Body::Welcome(w) if w.version() == PROTOCOL_VERSION => Ok(WelcomeInfo::from_frame(&w)),
        Body::Welcome(w) => Err(ClientError::Handshake(format!(
            "the server answered with protocol version {}, we speak {PROTOCOL_VERSION}",
            w.version()
        ))),
        Body::Error(e) => Err(ClientError::from_frame(&e)),
        other => Err(ClientError::Handshake(format!(
            "the server answered Hello with {} instead of Welcome",
            other.name()
        ))),
    }
}

/// The QUIC application close code that reports `e` to the server.
pub(crate) fn close_code(e: &ClientError) -> quinn::VarInt {
    let code = match e {
        ClientError::Protocol(d) => d.code(),
        ClientError::UnexpectedFrame(_) | ClientError::Handshake(_) => {
            crate::ErrorCode::UnexpectedFrame
        }
        _ => crate::ErrorCode::None,
    };
    code.0.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_proto::fb;

    #[test]
    fn welcome_frame_is_accepted_and_others_refused() {
        let mut enc = Encoder::new();
        let info = WelcomeInfo {
            version: PROTOCOL_VERSION,
            session_id: "s1".into(),
            max_frame_bytes: 1000,
            ..WelcomeInfo::default()
        };
        assert_eq!(welcome(&enc.welcome(&info)).expect("welcome"), info);

        let old = WelcomeInfo { version: 9, ..info };
        assert!(matches!(
            welcome(&enc.welcome(&old)),
            Err(ClientError::Handshake(_))
        ));

        let refused = enc.error(0, fb::ErrorCode::Unauthorized, "bad token", false, true, 0);
        let err = welcome(&refused).expect_err("refused");
        assert!(err.is_auth_failure(), "{err}");

        let wrong = enc.go_away(fb::ErrorCode::GoingAway, "bye", 0);
        assert!(matches!(welcome(&wrong), Err(ClientError::Handshake(_))));
        assert!(matches!(
            welcome(&Bytes::from_static(b"\x01\0\0\0x")),
            Err(ClientError::Protocol(_))
        ));
    }
}
