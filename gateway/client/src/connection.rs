//! The background task that owns a client's connection across reconnects.
//!
//! One task per [`Client`](crate::Client). It alternates between serving a
//! live connection (`live.rs`) and reconnecting with backoff, keeping the
//! protocol state (`State`) across both, so API calls made while
//! disconnected simply wait in `pending` and go out on the next connection.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quiver_proto::WelcomeInfo;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::command::Command;
use crate::config::Reconnect;
use crate::error::ClientError;
use crate::events::ClientEvent;
use crate::handshake::{ConnectParams, Established, establish};
use crate::reconnect::Backoff;
use crate::state::State;

/// What the client handles can observe about the task.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) reconnects: AtomicU64,
    pub(crate) connected: AtomicBool,
    /// Why the task stopped, if it gave up (not set by a user close).
    pub(crate) terminal: OnceLock<ClientError>,
}

/// How a live connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The user closed the client (`Some`) or dropped every handle (`None`).
    Close(Option<oneshot::Sender<()>>),
    /// The connection is gone; reconnect no earlier than `not_before`.
    Lost {
        cause: ClientError,
        not_before: Instant,
    },
}

/// What interrupted a wait for something else.
enum Interrupt {
    Close(Option<oneshot::Sender<()>>),
}

#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) state: State,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) drops: mpsc::UnboundedReceiver<u64>,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) params: Arc<ConnectParams>,
    pub(crate) policy: Reconnect,
    /// How long a subscription stream may wait for its Subscribed.
    pub(crate) route_timeout: Duration,
    pub(crate) status: Arc<Status>,
    pub(crate) welcome: watch::Sender<WelcomeInfo>,
    pub(crate) events: broadcast::Sender<ClientEvent>,
}

impl Task {
    pub(crate) async fn run(mut self, first: Established) {
        let mut next = Some(first);
        while let Some(established) = next.take() {
            self.on_connected(&established.welcome);
            let end = self.live(established).await;
            self.status.connected.store(false, Ordering::Relaxed);
            next = match end {
                End::Close(done) => {
                    self.finish(None, done);
                    None
                }
                End::Lost { cause, not_before } => {
                    tracing::info!(%cause, "quiver connection lost");
                    self.state.on_disconnected();
                    self.emit(ClientEvent::Disconnected {
                        cause: cause.clone(),
                    });
                    self.reconnect(cause, not_before).await
                }
            };
        }
    }

    fn on_connected(&mut self, welcome: &WelcomeInfo) {
        self.state.on_connected(welcome.max_frame_bytes);
        self.welcome.send_replace(welcome.clone());
        self.status.connected.store(true, Ordering::Relaxed);
    }

    /// Reconnects with backoff; `None` when the client stopped instead.
    async fn reconnect(
        &mut self,
        cause: ClientError,
        mut not_before: Instant,
    ) -> Option<Established> {
        if !cause.allows_reconnect() {
            // A new connection would be refused the same way.
            self.finish(Some(cause), None);
            return None;
        }
        let mut backoff = Backoff::new(self.policy.clone());
        let mut last = cause;
        loop {
            let Some(delay) = backoff.next_delay(rand::random()) else {
                let gave_up = self.policy.enabled;
                let error = ClientError::ConnectionLost {
                    cause: Box::new(last),
                    gave_up,
                };
                self.finish(Some(error), None);
                return None;
            };
            // The backoff doubles as jitter on top of any delay the server
            // asked for, so clients sent away together return spread out.
            let delay = delay + not_before.saturating_duration_since(Instant::now());
            let attempt = backoff.failures() + 1;
            tracing::info!(attempt, ?delay, "reconnecting to quiver");
            self.emit(ClientEvent::Reconnecting { attempt, delay });
            if let Err(Interrupt::Close(done)) = self.serve_until(tokio::time::sleep(delay)).await {
                self.finish(None, done);
                return None;
            }
            let endpoint = self.endpoint.clone();
            let params = Arc::clone(&self.params);
            let attempt_fut = async move { establish(&endpoint, &params).await };
            match self.serve_until(attempt_fut).await {
                Ok(Ok(established)) => {
                    let reconnects = self.status.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::info!(reconnects, session = %established.welcome.session_id, "reconnected to quiver");
                    self.emit(ClientEvent::Reconnected {
                        welcome: established.welcome.clone(),
                        reconnects,
                    });
                    return Some(established);
                }
                Ok(Err(error)) => {
                    tracing::warn!(attempt, %error, "reconnect failed");
                    self.emit(ClientEvent::ReconnectFailed {
                        attempt,
                        error: error.clone(),
                    });
                    if !error.allows_reconnect() {
                        self.finish(Some(error), None);
                        return None;
                    }
                    not_before = Instant::now() + error.retry_after().unwrap_or_default();
                    backoff.failed();
                    last = error;
                }
                Err(Interrupt::Close(done)) => {
                    self.finish(None, done);
                    return None;
                }
            }
        }
    }

    /// Runs `fut` to completion while still accepting API calls (they wait
    /// in `pending` for the next connection) and subscription drops.
    async fn serve_until<F: Future>(&mut self, fut: F) -> Result<F::Output, Interrupt> {
        let mut fut = std::pin::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Close { done }) => return Err(Interrupt::Close(Some(done))),
                    Some(cmd) => self.state.submit(cmd),
                    None => return Err(Interrupt::Close(None)),
                },
                Some(sub) = self.drops.recv() => self.state.on_subscription_dropped(sub),
            }
        }
    }

    /// Stops for good: with `error`, every waiter and subscription gets it;
    /// without, requests fail with `Closed` and subscriptions end cleanly.
    fn finish(&mut self, error: Option<ClientError>, done: Option<oneshot::Sender<()>>) {
        match &error {
            Some(e) => {
                tracing::warn!(error = %e, "quiver client stopped");
                let _ = self.status.terminal.set(e.clone());
                self.state.fail_all(e);
            }
            None => self.state.close_all(),
        }
        self.commands.close();
        self.emit(ClientEvent::Closed { error });
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        // No receiver is fine: events are optional.
        let _ = self.events.send(event);
    }
}
