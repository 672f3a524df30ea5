//! The publish pipeline: the one path from an accepted publish to the
//! durable log, the ack, and the live fan-out.
//!
//! Publishes from every connection queue here. The pipeline takes whatever
//! has queued up as one group, appends the group in one store call (one
//! fsync on the embedded store), then fans each new message out and acks
//! it, in offset order. Group commit makes durability cheap under load, and
//! a single sequencer per node keeps each channel's fan-out in offset order
//! without locks.

use std::sync::Arc;
use std::time::Instant;

use quiver_proto::{Encoder, MessageRef};
use quiver_storage::{
    Appended, ChannelKey, Direction, ItemState, MessageLog, NewMessage, Offset, ReadRange,
    StoreError,
};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::hub::{Delivery, Hub};
use crate::metrics::Metrics;

/// What a publisher waits on.
pub type PublishReceipt = oneshot::Receiver<Result<Appended, StoreError>>;

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Handle to submit publishes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PublishPipeline {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("message", &self.message)
            .finish()
    }
}

/// Settings of the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Publishes waiting for the store, across all connections. When full,
    /// connections stop reading new frames: backpressure reaches publishers
    /// through QUIC flow control instead of memory growing. Default 16384.
    pub queue: usize,
    /// Most publishes in one store append. Default 1024.
    pub max_group: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            queue: 16 * 1024,
            max_group: 1024,
        }
    }
}

impl PublishPipeline {
    /// Starts the sequencer task. It ends when every handle is dropped and
    /// the queue is drained, so shutdown loses no accepted publish.
    pub fn start(
        store: Arc<dyn MessageLog>,
        hub: Arc<Hub>,
        metrics: Metrics,
        config: PipelineConfig,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(config.queue.max(1));
        let sequencer = Sequencer {
            store,
            hub,
            metrics,
            encoder: Encoder::new(),
            max_group: config.max_group.max(1),
        };
        let task = tokio::spawn(sequencer.run(queue));
        (Self { jobs }, task)
    }

    /// Queues a publish, waiting while the queue is full. Receipts resolve
    /// in submission order for each channel.
    pub async fn submit(&self, message: NewMessage) -> PublishReceipt {
        let (reply, receipt) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { message, reply }).await {
            let _ = job.reply.send(Err(StoreError::Closed));
        }
        receipt
    }
}

/// Whether `target` is an item of `channel` that an edit may change: it
/// exists, is no edit itself, and is not deleted. The store does not check
/// this (see [`MessageLog`]), so every edit is checked here first.
pub async fn check_edit_target(
    store: &dyn MessageLog,
    channel: &ChannelKey,
    target: Offset,
) -> Result<bool, StoreError> {
    if target == 0 {
        return Ok(false);
    }
    let range = ReadRange {
        after: Some(target - 1),
        before: Some(target.saturating_add(1)),
        limit: 1,
        direction: Direction::Forward,
    };
    let found = store.read(channel, range).await?;
    Ok(found
        .first()
        .is_some_and(|m| m.offset == target && m.edit.is_none() && m.state != ItemState::Deleted))
}

struct Sequencer {
    store: Arc<dyn MessageLog>,
    hub: Arc<Hub>,
    metrics: Metrics,
    encoder: Encoder,
    max_group: usize,
}

impl Sequencer {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut group = Vec::with_capacity(self.max_group);
        while queue.recv_many(&mut group, self.max_group).await > 0 {
            self.commit(&mut group).await;
        }
    }

    async fn commit(&mut self, group: &mut Vec<Job>) {
        let batch = group.iter().map(|job| job.message.clone()).collect();
        let started = Instant::now();
        let result = self.store.append(batch).await;
        self.metrics
            .store_append_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(outcomes) if outcomes.len() == group.len() => {
                for (job, appended) in group.drain(..).zip(outcomes) {
                    if !appended.duplicate {
                        self.fan_out(&job.message, &appended);
                    }
                    let _ = job.reply.send(Ok(appended));
                }
            }
            Ok(outcomes) => {
                let error = StoreError::Invalid(format!(
                    "store returned {} outcomes for {} messages",
                    outcomes.len(),
                    group.len()
                ));
                self.fail_group(group, &error);
            }
            Err(error) => self.fail_group(group, &error),
        }
    }

    fn fan_out(&mut self, message: &NewMessage, appended: &Appended) {
        self.metrics.published.inc();
        let frame = self.encoder.message(&MessageRef {
            offset: appended.offset,
            id: appended.id.0,
            sender: &message.sender,
            timestamp_ms: appended.timestamp_ms,
            payload: &message.payload,
            headers: message
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_str())),
            meta: quiver_session::message_meta(message.edit, ItemState::Original),
        });
        self.hub.publish(
            &message.channel,
            Delivery {
                offset: appended.offset,
                frame,
            },
        );
    }

    fn fail_group(&mut self, group: &mut Vec<Job>, error: &StoreError) {
        warn!(%error, messages = group.len(), "store append failed; publishers get an error");
        self.metrics.store_errors.inc();
        for job in group.drain(..) {
            let _ = job.reply.send(Err(error.clone()));
        }
    }
}
