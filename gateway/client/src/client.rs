//! The public handle: connect, publish, subscribe, history, close.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};

use crate::Welcome;
use crate::address::Target;
use crate::command::{Command, Reply};
use crate::config::ClientConfig;
use crate::connection::{Status, Task};
use crate::error::ClientError;
use crate::events::ClientEvent;
use crate::handshake::{ConnectParams, establish};
use crate::state::State;
use crate::subscription::{SubShared, Subscription, WatchSpec};
use crate::tracking::{Position, Watch};
use crate::types::{HistoryPage, HistoryQuery, PublishAck, PublishOptions, SubscribeOptions};

/// Queued API calls before callers wait for the connection task.
const COMMAND_QUEUE: usize = 256;
/// Lifecycle events kept for slow event readers.
const EVENT_QUEUE: usize = 64;
/// Largest frame accepted from the server; history pages are the big ones.
const MAX_INCOMING_FRAME: usize = 16 * 1024 * 1024;
/// Bound on the token plus client name; a JWT is a few kilobytes at most.
const MAX_HELLO_FIELDS: usize = 64 * 1024;
/// How long `close` waits for the close to reach the server.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// A connection to a Quiver gateway.
///
/// Cheap to clone: clones share one connection and one background task,
/// which reconnects as the [`Reconnect`](crate::Reconnect) policy allows.
/// The connection closes after [`Client::close`], or once every clone and
/// every [`Subscription`] is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    /// Unbounded so `Subscription::drop` never blocks; one entry per
    /// subscription at most.
    drops: mpsc::UnboundedSender<u64>,
    welcome: watch::Receiver<Welcome>,
    events: broadcast::Sender<ClientEvent>,
    status: Arc<Status>,
    in_flight: Arc<Semaphore>,
    request_timeout: Duration,
    subscription_buffer: usize,
    next_sub_id: AtomicU64,
    /// Set when the client made its own endpoint, so `close` can wait for
    /// the close frame to leave before the socket goes away.
    own_endpoint: Option<quinn::Endpoint>,
}

impl Client {
    /// Connects on a new UDP socket and returns once the server said
    /// Welcome. The first connection is not retried: errors come back here.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let target = Target::parse(&config.server)?;
        let bind = match config.bind {
            Some(bind) => bind,
            None => {
                let addr = tokio::time::timeout(config.connect_timeout, target.resolve(None))
                    .await
                    .map_err(|_| ClientError::Timeout {
                        what: "resolving the server address",
                        after: config.connect_timeout,
                    })??;
                let ip = if addr.is_ipv4() {
                    Ipv4Addr::UNSPECIFIED.into()
                } else {
                    Ipv6Addr::UNSPECIFIED.into()
                };
                SocketAddr::new(ip, 0)
            }
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| ClientError::Bind {
            addr: bind,
            source: Arc::new(e),
        })?;
        Self::start(endpoint, config, true).await
    }

    /// Connects through an existing endpoint, so many clients can share a
    /// few UDP sockets (load tests). `config.bind` is ignored.
    pub async fn connect_with_endpoint(
        endpoint: quinn::Endpoint,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        Self::start(endpoint, config, false).await
    }

    async fn start(
        endpoint: quinn::Endpoint,
        config: ClientConfig,
        own: bool,
    ) -> Result<Self, ClientError> {
        if config.token.len() + config.client_name.len() > MAX_HELLO_FIELDS {
            return Err(ClientError::InvalidConfig(format!(
                "token and client name total {} bytes; keep them under {MAX_HELLO_FIELDS}",
                config.token.len() + config.client_name.len()
            )));
        }
        let params = Arc::new(ConnectParams {
            target: Target::parse(&config.server)?,
            quic: config.quic_config()?,
            token: config.token.clone(),
            client_name: config.client_name.clone(),
            connect_timeout: config.connect_timeout,
            max_frame_bytes: MAX_INCOMING_FRAME,
        });
        let established = establish(&endpoint, &params).await?;
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (drops, drops_rx) = mpsc::unbounded_channel();
        let (welcome_tx, welcome) = watch::channel(established.welcome.clone());
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let status = Arc::new(Status::default());
        let task = Task {
            state: State::new(),
            commands: commands_rx,
            drops: drops_rx,
            endpoint: endpoint.clone(),
            params,
            policy: config.reconnect.clone(),
            route_timeout: config.request_timeout,
            status: Arc::clone(&status),
            welcome: welcome_tx,
            events: events.clone(),
        };
        tokio::spawn(task.run(established));
        Ok(Self {
            inner: Arc::new(Inner {
                commands,
                drops,
                welcome,
                events,
                status,
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                request_timeout: config.request_timeout,
                subscription_buffer: config.subscription_buffer,
                next_sub_id: AtomicU64::new(1),
                own_endpoint: own.then_some(endpoint),
            }),
        })
    }

    /// The current connection's Welcome (replaced on every reconnect).
    pub fn welcome(&self) -> Welcome {
        self.inner.welcome.borrow().clone()
    }

    /// Successful automatic reconnects so far.
    pub fn reconnect_count(&self) -> u64 {
        self.inner.status.reconnects.load(Ordering::Relaxed)
    }

    /// Whether a connection is up right now (false while reconnecting).
    pub fn is_connected(&self) -> bool {
        self.inner.status.connected.load(Ordering::Relaxed)
    }

    /// A receiver of lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

    /// Publishes `payload` with a random idempotency key, so the automatic
    /// re-send after a reconnect can never write it twice.
    pub async fn publish(
        &self,
        channel: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishAck, ClientError> {
        self.publish_with(channel, PublishOptions::new(payload))
            .await
    }

    /// Publishes with headers and/or a caller-chosen idempotency key.
    pub async fn publish_with(
        &self,
        channel: &str,
        mut options: PublishOptions,
    ) -> Result<PublishAck, ClientError> {
        options.key.get_or_insert_with(random_key);
        let channel = channel.to_owned();
        self.call(|reply, permit| Command::Publish {
            channel,
            options,
            reply,
            permit,
        })
        .await
    }

    /// Subscribes to `channel`: live from the head when `since` is `None`,
    /// else replaying every message after offset `since` first.
    pub async fn subscribe(
        &self,
        channel: &str,
        since: Option<u64>,
    ) -> Result<Subscription, ClientError> {
        let options = SubscribeOptions {
            since,
            ..SubscribeOptions::default()
        };
        self.subscribe_with(channel, options).await
    }

    /// Subscribes with every option: for a feed,
    /// `SubscribeOptions::last(20)` replays the latest 20 messages, then
    /// continues live.
    pub async fn subscribe_with(
        &self,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, ClientError> {
        let SubscribeOptions { since, last } = options;
        let id = self.inner.next_sub_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(SubShared::new(id, Arc::from(channel)));
        let (tx, rx) = mpsc::channel(self.inner.subscription_buffer);
        let command_shared = Arc::clone(&shared);
        let head = self
            .call(|reply, permit| Command::Subscribe {
                shared: command_shared,
                since,
                last,
                tx,
                reply,
                permit,
            })
            .await?;
        Ok(Subscription::new(self.clone(), shared, rx, head))
    }

    /// Watches a tracking channel: the latest known positions, then live
    /// updates, at most `max_rate` per entity per second (0: the server's
    /// maximum for the channel).
    pub async fn watch(&self, channel: &str, max_rate: u32) -> Result<Watch, ClientError> {
        let id = self.inner.next_sub_id.fetch_add(1, Ordering::Relaxed);
        let (positions, positions_rx) = mpsc::channel(crate::tracking::WATCH_QUEUE);
        let spec = WatchSpec {
            max_rate,
            positions,
        };
        let shared = Arc::new(SubShared::watching(id, Arc::from(channel), spec));
        // Carries the channel's presence events (and the end).
        let (tx, rx) = mpsc::channel(self.inner.subscription_buffer);
        let command_shared = Arc::clone(&shared);
        let head = self
            .call(|reply, permit| Command::Subscribe {
                shared: command_shared,
                since: None,
                last: 0,
                tx,
                reply,
                permit,
            })
            .await?;
        let subscription = Subscription::new(self.clone(), shared, rx, head);
        Ok(Watch::new(subscription, positions_rx))
    }

    /// Reports `position` on the tracking channel `channel`: as a QUIC
    /// datagram (on the control stream when the path has none), without an
    /// answer. The token needs a `track` claim for the entity. Positions
    /// reported while disconnected are dropped: the next one supersedes
    /// them.
    pub async fn track(&self, channel: &str, position: &Position) -> Result<(), ClientError> {
        let frame = quiver_proto::Encoder::new().track(channel, &position.as_ref());
        if frame.len() > quiver_proto::MAX_DATAGRAM_BYTES * 4 {
            return Err(ClientError::RequestTooLarge {
                size: frame.len(),
                max: quiver_proto::MAX_DATAGRAM_BYTES * 4,
            });
        }
        self.inner
            .commands
            .send(Command::Track { frame })
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Updates the item at offset `target` of `channel`: its payload and
    /// headers become `options`'. Subscribers receive the edit as a
    /// message of kind `Update`; history shows the item `Updated`. Like a
    /// publish, it is idempotent (a random key unless `options` sets one)
    /// and re-sent after a reconnect. Refused with `NotFound` when `target`
    /// holds no item (never written, an edit itself, or deleted).
    pub async fn edit(
        &self,
        channel: &str,
        target: u64,
        options: PublishOptions,
    ) -> Result<PublishAck, ClientError> {
        self.send_edit(channel, target, false, options).await
    }

    /// Deletes the item at offset `target` of `channel`: subscribers receive
    /// a message of kind `Delete`; history shows the item `Deleted`, with
    /// no payload or headers. Refused with `NotFound` like [`Client::edit`].
    pub async fn delete(&self, channel: &str, target: u64) -> Result<PublishAck, ClientError> {
        self.send_edit(channel, target, true, PublishOptions::default())
            .await
    }

    async fn send_edit(
        &self,
        channel: &str,
        target: u64,
        delete: bool,
        mut options: PublishOptions,
    ) -> Result<PublishAck, ClientError> {
        options.key.get_or_insert_with(random_key);
        let channel = channel.to_owned();
        self.call(|reply, permit| Command::Edit {
            channel,
            target,
            delete,
            options,
            reply,
            permit,
        })
        .await
    }

    /// Fetches one page of a channel's stored messages.
    pub async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage, ClientError> {
        let channel = Arc::from(channel);
        self.call(|reply, permit| Command::History {
            channel,
            query,
            reply,
            permit,
        })
        .await
    }

    /// Closes the connection gracefully (QUIC code 0). Pending requests fail
    /// with [`ClientError::Closed`]; subscriptions end after their queued
    /// messages. Every clone is closed.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Close { done })
            .await
            .is_ok()
        {
            let _ = closed.await;
        }
        if let Some(endpoint) = &self.inner.own_endpoint {
            let _ = tokio::time::timeout(CLOSE_LINGER, endpoint.wait_idle()).await;
        }
    }

    /// Sends one request to the connection task and waits for its answer,
    /// all within the request timeout.
    pub(crate) async fn call<T>(
        &self,
        command: impl FnOnce(Reply<T>, OwnedSemaphorePermit) -> Command,
    ) -> Result<T, ClientError> {
        let after = self.inner.request_timeout;
        let exchange = async {
            let permit = Arc::clone(&self.inner.in_flight)
                .acquire_owned()
                .await
                .map_err(|_| self.stopped())?;
            let (reply, answer) = oneshot::channel();
            self.inner
                .commands
                .send(command(reply, permit))
                .await
                .map_err(|_| self.stopped())?;
            answer.await.map_err(|_| self.stopped())?
        };
        tokio::time::timeout(after, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                what: "waiting for the server's response",
                after,
            })?
    }

    /// The error for a call made after the task stopped.
    fn stopped(&self) -> ClientError {
        self.inner
            .status
            .terminal
            .get()
            .cloned()
            .unwrap_or(ClientError::Closed)
    }

    pub(crate) fn subscription_dropped(&self, id: u64) {
        // Fails only once the task is gone, which forgot the subscription.
        let _ = self.inner.drops.send(id);
    }
}

/// A fresh idempotency key: 128 random bits in hex.
fn random_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}
