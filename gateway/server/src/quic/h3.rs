//! HTTP/3 on the gateway's UDP port: connections that negotiate ALPN `h3`
//! are served the publish API, through the same axum handlers as the TCP
//! listener. This adapter only converts: h3 requests become
//! `http::Request`s with a streamed body, and responses stream back.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use bytes::{Buf as _, Bytes};
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use tracing::debug;

/// The ALPN id of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// Unidirectional streams an HTTP/3 client may open: its control stream,
/// the two QPACK streams and a grease stream (RFC 9114 section 6.2).
const H3_UNI_STREAMS: u32 = 4;
/// Largest request header section accepted (RFC 9114 section 4.2.2).
const MAX_FIELD_SECTION_BYTES: u64 = 16 * 1024;
/// The HTTP/3 close code of a normal close (`H3_NO_ERROR`).
const H3_NO_ERROR: u32 = 0x100;

/// What HTTP/3 connections are served with.
#[derive(Clone, Debug)]
pub struct H3App {
    /// The public API router (see `api::public_router`).
    pub router: Router,
    /// Largest request body passed to the router. Handlers enforce their
    /// own limits too; this bounds what any route can be made to buffer.
    pub max_body_bytes: usize,
    /// Flips to true when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// How long in-flight requests may finish after shutdown begins.
    pub grace: Duration,
}

/// Serves one QUIC connection that negotiated `h3` until the client leaves
/// or the gateway shuts down (GOAWAY, then in-flight requests finish).
pub(crate) async fn serve(connection: quinn::Connection, app: H3App) {
    // The endpoint refuses client unidirectional streams (quiver/1 has
    // none); HTTP/3 needs a few.
    connection.set_max_concurrent_uni_streams(H3_UNI_STREAMS.into());
    let remote = connection.remote_address();
    let built = h3::server::builder()
        .max_field_section_size(MAX_FIELD_SECTION_BYTES)
        .build::<_, Bytes>(h3_quinn::Connection::new(connection.clone()))
        .await;
    let mut h3 = match built {
        Ok(h3) => h3,
        Err(error) => {
            debug!(%remote, %error, "HTTP/3 setup failed");
            return;
        }
    };
    let mut shutdown = app.shutdown.clone();
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    requests.spawn(request(resolver, app.router.clone(), app.max_body_bytes));
                }
                Ok(None) => break,
                Err(error) => {
                    debug!(%remote, %error, "HTTP/3 connection ended");
                    break;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            () = stopping(&mut shutdown) => {
                // GOAWAY: the client sends new requests elsewhere.
                let _ = h3.shutdown(0).await;
                break;
            }
        }
    }
    let drain = async { while requests.join_next().await.is_some() {} };
    if tokio::time::timeout(app.grace, drain).await.is_err() {
        requests.shutdown().await;
    }
    drop(h3);
    connection.close(H3_NO_ERROR.into(), b"");
}

/// Completes once the gateway begins shutting down (or is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

type Resolver = h3::server::RequestResolver<h3_quinn::Connection, Bytes>;

/// Answers one request stream.
async fn request(resolver: Resolver, router: Router, max_body_bytes: usize) {
    let (head, stream) = match resolver.resolve_request().await {
        Ok(resolved) => resolved,
        Err(error) => {
            debug!(%error, "HTTP/3 request refused");
            return;
        }
    };
    let (mut send, recv) = stream.split();
    let (parts, ()) = head.into_parts();
    let request = Request::from_parts(parts, Body::from_stream(body(recv, max_body_bytes)));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    if let Err(error) = respond(&mut send, response).await {
        debug!(%error, "HTTP/3 response not sent");
    }
}

type RecvHalf = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;
type SendHalf = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Stream(#[from] h3::error::StreamError),
}

/// The request body as a stream of chunks, cut off past `limit` bytes.
fn body(
    recv: RecvHalf,
    limit: usize,
) -> impl futures::Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    futures::stream::unfold(Some((recv, 0usize)), move |state| async move {
        let (mut recv, read) = state?;
        match recv.recv_data().await {
            Ok(Some(mut data)) => {
                let chunk = data.copy_to_bytes(data.remaining());
                let read = read + chunk.len();
                if read > limit {
                    // The handler answers 413; the client may stop sending
                    // (RFC 9114 section 4.1.1).
                    recv.stop_sending(h3::error::Code::H3_NO_ERROR);
                    return Some((Err(BodyError::TooLarge(limit)), None));
                }
                Some((Ok(chunk), Some((recv, read))))
            }
            Ok(None) => None,
            Err(error) => Some((Err(error.into()), None)),
        }
    })
}

async fn respond(send: &mut SendHalf, response: Response<Body>) -> Result<(), BodyError> {
    let (parts, body) = response.into_parts();
    send.send_response(Response::from_parts(parts, ())).await?;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => send.send_data(chunk).await?,
            Err(error) => {
                debug!(%error, "response body failed");
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return Ok(());
            }
        }
    }
    send.finish().await?;
    Ok(())
}
