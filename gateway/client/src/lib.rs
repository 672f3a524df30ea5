//! Async Rust client for Quiver over QUIC.
//!
//! One [`Client`] holds one QUIC connection (`quiver/1`) and a background
//! task that owns it: it writes requests, matches responses to callers by
//! request id, routes each subscription stream into a bounded queue, and,
//! when the connection drops or the server sends GoAway, reconnects with
//! backoff, resubscribes from the last delivered offset and re-sends
//! in-flight requests (publishes keep their idempotency key, so a re-send
//! never duplicates a message).
//!
//! # Guarantees
//!
//! - **No gap, no duplicate across reconnects.** Each [`Subscription`]
//!   remembers the last offset it handed out; a resubscribe asks for
//!   everything after it, and anything at or below it is dropped.
//! - **Publishes are idempotent.** [`Client::publish`] sets a random key;
//!   a publish in flight when the connection drops is re-sent with the same
//!   key and answered with the original offset (`duplicate = true`).
//! - **Bounded memory.** Each subscription has a bounded queue: when the
//!   application does not read, the client stops reading that stream and
//!   QUIC flow control pushes back on the server. Requests in flight are
//!   capped by [`ClientConfig::max_in_flight`].
//! - **Stops when retrying cannot help.** A rejected token, an unsupported
//!   version or another non-retryable fatal refusal ends the client and is
//!   reported to every waiter instead of reconnecting into it.
//!
//! ```no_run
//! use quiver_client::{Client, ClientConfig, HistoryQuery, Trust};
//!
//! # async fn demo() -> Result<(), quiver_client::ClientError> {
//! let config = ClientConfig::new("localhost:4433", "<jwt>", Trust::CaPem("ca.pem".into()));
//! let client = Client::connect(config).await?;
//! let mut sub = client.subscribe("room.1", None).await?;
//! let ack = client.publish("room.1", "hello").await?;
//! while let Some(message) = sub.next().await {
//!     let message = message?;
//!     println!("{} at {}", String::from_utf8_lossy(&message.payload), message.offset);
//!     if message.offset == ack.offset {
//!         break;
//!     }
//! }
//! let page = client.history("room.1", HistoryQuery::latest(10)).await?;
//! assert!(!page.messages.is_empty());
//! client.close().await;
//! # Ok(())
//! # }
//! ```

mod address;
mod client;
mod command;
mod config;
mod connection;
mod decode;
mod error;
mod events;
mod handshake;
mod io;
mod live;
mod reconnect;
mod state;
mod streams;
mod subscription;
mod tls;
mod tracking;
mod types;

pub use client::Client;
pub use config::{ClientConfig, Reconnect};
pub use error::{ClientError, ErrorCode};
pub use events::ClientEvent;
pub use quiver_proto::WelcomeInfo as Welcome;
pub use subscription::Subscription;
pub use tls::{Trust, quic_client_config, rustls_client_config};
pub use tracking::{Position, Watch, WatchEvent};
pub use types::{
    Direction, HistoryPage, HistoryQuery, ItemState, Message, MessageKind, PresenceEvent,
    PublishAck, PublishOptions, SubscribeOptions, SubscriptionEvent,
};

/// Re-exported so users can name certificates for [`Trust::CaDer`] without
/// depending on rustls themselves.
pub use rustls::pki_types::CertificateDer;
