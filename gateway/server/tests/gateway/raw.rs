//! A hand-driven QUIC client that speaks frames directly, for sending what
//! the real client never would.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use quiver_client::{Trust, quic_client_config};
use quiver_proto::fb::ErrorCode;
use quiver_proto::{Body, Encoder, FrameReader};

pub struct Raw {
    pub connection: quinn::Connection,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    reader: FrameReader,
    _endpoint: quinn::Endpoint,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, ca: &Path) -> Raw {
        let config = quic_client_config(&Trust::CaPem(ca.to_path_buf())).expect("tls");
        Self::connect_with(addr, config).await
    }

    /// Connects with a client that does not offer QUIC datagrams.
    pub async fn without_datagrams(addr: SocketAddr, ca: &Path, token: &str) -> Raw {
        let mut config = quic_client_config(&Trust::CaPem(ca.to_path_buf())).expect("tls");
        let mut transport = quinn::TransportConfig::default();
        transport.datagram_receive_buffer_size(None);
        config.transport_config(std::sync::Arc::new(transport));
        let mut raw = Self::connect_with(addr, config).await;
        raw.hello(token).await;
        raw
    }

    async fn connect_with(addr: SocketAddr, config: quinn::ClientConfig) -> Raw {
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
        endpoint.set_default_client_config(config);
        let connection = endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let (send, recv) = connection.open_bi().await.expect("open control stream");
        Raw {
            connection,
            send,
            recv,
            reader: FrameReader::new(16 << 20),
            _endpoint: endpoint,
        }
    }

    /// Connects and completes Hello/Welcome.
    pub async fn authenticated(addr: SocketAddr, ca: &Path, token: &str) -> Raw {
        let mut raw = Raw::connect(addr, ca).await;
        raw.hello(token).await;
        raw
    }

    async fn hello(&mut self, token: &str) {
        self.write(Encoder::new().hello(1, token, "raw-test")).await;
        let frame = self.next_frame().await.expect("welcome");
        assert!(
            matches!(quiver_proto::decode(&frame), Ok(Body::Welcome(_))),
            "expected Welcome"
        );
    }

    pub async fn write(&mut self, bytes: impl Into<Bytes>) {
        self.send.write_chunk(bytes.into()).await.expect("write");
    }

    /// The next frame on the control stream, or None when it ends.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.reader.next_frame().expect("server frames are valid") {
                return Some(frame);
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), self.recv.read_chunk(1 << 16, true))
                    .await
                    .expect("server answers in time")
                    .ok()??;
            self.reader.push_bytes(chunk.bytes);
        }
    }

    /// Asserts the server sent a fatal Error with `code` and closed the
    /// connection with the same application code.
    pub async fn expect_fatal(mut self, code: ErrorCode) -> String {
        let frame = self
            .next_frame()
            .await
            .expect("an Error frame before the close");
        let Ok(Body::Error(error)) = quiver_proto::decode(&frame) else {
            panic!(
                "expected Error {code:?}, got {:?}",
                quiver_proto::decode(&frame).map(|b| b.name())
            );
        };
        assert_eq!(error.code(), code, "error message: {:?}", error.message());
        assert!(error.fatal(), "{code:?} must be fatal");
        let message = error.message().unwrap_or_default().to_string();
        assert!(!message.is_empty(), "errors carry a message");
        let closed = tokio::time::timeout(Duration::from_secs(10), self.connection.closed())
            .await
            .expect("server closes the connection");
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, u32::from(code.0).into(), "close code");
            }
            other => panic!("expected an application close, got {other}"),
        }
        message
    }
}
