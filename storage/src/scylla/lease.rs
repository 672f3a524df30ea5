//! Channel leases: which node assigns a channel's offsets.
//!
//! A lease row `(tenant, channel) -> owner, epoch, lease_until, head_hint`
//! is only ever written by lightweight transactions (LWT), and only when a
//! lease is taken, renewed or released: a few per channel per `lease_ttl`,
//! never one per message.
//!
//! - **Take.** A node may take a lease only once `lease_until` (plus the
//!   clock margin) has passed, by raising the epoch with
//!   `... IF epoch = ? AND lease_until = ?`. Conditioning on `lease_until`
//!   too means a renewal that lands between our read and our LWT makes the
//!   take fail instead of stealing a live lease.
//! - **Renew.** `... IF owner = ? AND epoch = ?`. If it does not apply,
//!   another node took the channel: this node stops assigning offsets at
//!   once and fails the pending appends with `Unavailable`.
//! - **Validity.** The owner treats its lease as valid until
//!   `sent + lease_ttl - clock_margin`, measured on its monotonic clock from
//!   when it sent the LWT. A new owner waits until `lease_until +
//!   clock_margin` on its wall clock. Between the two lies twice the margin,
//!   which absorbs clock differences between nodes.

use std::time::{Duration, Instant};

use super::Inner;
use super::db::{Failure, now_ms};
use crate::{ChannelKey, Offset, StoreError};

/// A lease this node holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lease {
    pub(crate) epoch: i64,
    /// The owner may assign offsets and ack writes until then.
    pub(crate) valid_until: Instant,
    /// When the owner last renewed (or took) the lease.
    pub(crate) renewed_at: Instant,
    /// The head hint stored in the lease row when it was taken.
    pub(crate) head_hint: Offset,
}

/// The lease row as read: owner, epoch, lease_until (ms), head_hint.
type LeaseRow = (Option<String>, Option<i64>, Option<i64>, Option<i64>);

/// Attempts at taking a lease that another node races for.
const TAKE_ATTEMPTS: usize = 3;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Inner {
    fn valid_until(&self, sent: Instant) -> Instant {
        sent + self
            .config
            .lease_ttl
            .saturating_sub(self.config.clock_margin)
    }

    /// Takes the lease of `key`, waiting (up to the request timeout) for a
    /// live lease of another node, or of an earlier run of this one, to end.
    pub(crate) async fn acquire(&self, key: &ChannelKey) -> Result<Lease, Failure> {
        let (t, c) = (&*key.tenant, &*key.channel);
        let (ttl, margin) = (ms(self.config.lease_ttl), ms(self.config.clock_margin));
        let mut patience = self.config.request_timeout;
        for _ in 0..TAKE_ATTEMPTS {
            let row: Option<LeaseRow> = self.db.row(&self.db.st.lease_get, (t, c)).await?;
            let sent = Instant::now();
            let now = now_ms();
            let Some((owner, epoch, until, hint)) = row else {
                let values = (t, c, &self.owner, 1i64, now.saturating_add(ttl));
                if self.db.lwt(&self.db.st.lease_insert, values).await? {
                    return Ok(self.lease(1, sent, 0));
                }
                continue;
            };
            let (epoch, until) = (epoch.unwrap_or(0), until.unwrap_or(0));
            let free_at = until.saturating_add(margin);
            if now < free_at {
                let wait = Duration::from_millis(u64::try_from(free_at - now).unwrap_or(0));
                if wait > patience {
                    let owner = owner.unwrap_or_default();
                    return Err(StoreError::Unavailable {
                        reason: format!(
                            "channel is owned by gateway node {owner} (lease epoch {epoch}); \
                             only the owner assigns its offsets"
                        ),
                        retry_after: wait,
                    }
                    .into());
                }
                patience = patience.saturating_sub(wait);
                tokio::time::sleep(wait).await;
                continue;
            }
            let values = (
                &self.owner,
                epoch + 1,
                now.saturating_add(ttl),
                t,
                c,
                epoch,
                until,
            );
            if self.db.lwt(&self.db.st.lease_take, values).await? {
                let hint = u64::try_from(hint.unwrap_or(0)).unwrap_or(0);
                tracing::debug!(
                    tenant = t,
                    channel = c,
                    epoch = epoch + 1,
                    "took channel lease"
                );
                return Ok(self.lease(epoch + 1, sent, hint));
            }
        }
        Err(super::db::unavailable("another gateway node is taking this channel's lease").into())
    }

    fn lease(&self, epoch: i64, sent: Instant, head_hint: Offset) -> Lease {
        Lease {
            epoch,
            valid_until: self.valid_until(sent),
            renewed_at: sent,
            head_hint,
        }
    }

    /// Renews `lease`, storing `head` as the new head hint. `Ok(false)`
    /// means another node took the channel.
    pub(crate) async fn renew(
        &self,
        key: &ChannelKey,
        lease: &mut Lease,
        head: Offset,
    ) -> Result<bool, Failure> {
        let sent = Instant::now();
        let until = now_ms().saturating_add(ms(self.config.lease_ttl));
        let hint = i64::try_from(head).unwrap_or(i64::MAX);
        let values = (
            until,
            hint,
            &*key.tenant,
            &*key.channel,
            &self.owner,
            lease.epoch,
        );
        if !self.db.lwt(&self.db.st.lease_renew, values).await? {
            tracing::warn!(
                tenant = &*key.tenant,
                channel = &*key.channel,
                epoch = lease.epoch,
                "channel lease was taken over by another node; stopped assigning offsets"
            );
            return Ok(false);
        }
        lease.valid_until = self.valid_until(sent);
        lease.renewed_at = sent;
        Ok(true)
    }

    /// Gives the lease up (lease_until = 0), so another node can take the
    /// channel without waiting for it to expire.
    pub(crate) async fn release(&self, key: &ChannelKey, lease: &Lease, head: Offset) {
        let hint = i64::try_from(head).unwrap_or(i64::MAX);
        let values = (
            0i64,
            hint,
            &*key.tenant,
            &*key.channel,
            &self.owner,
            lease.epoch,
        );
        if let Err(err) = self.db.lwt(&self.db.st.lease_renew, values).await {
            tracing::debug!(error = %err.error, "releasing a channel lease failed; it will expire");
        }
    }
}
