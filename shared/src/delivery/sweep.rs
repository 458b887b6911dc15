//! The scheduled sweep (every minute): the deliveries whose retry is due, or whose holder's
//! lease ran out, read shard by shard from the due index and run like a stream batch's. One is
//! taken over (a conditional write: two sweeps never take the same one) only right before its
//! attempt; one deferred or ended is moved directly from the version the index showed.
//!
//! # Fair across users and webhooks
//! Due deliveries are spread over [`DUE_SHARDS`] partitions of the index by user
//! (`sandbox::store::Key::due_shard`), and every sweep reads every shard, at most
//! [`SweepLimits::per_shard`] earliest first from each. However large one user's backlog, it
//! fills only its own shard's read: a retry of any user in another shard is read (and, with
//! queues round-robin across users, attempted) in the first sweep after it is due. Within a
//! shard, one webhook gets at most [`SweepLimits::per_webhook`] attempts per sweep; the rest of
//! the deliveries read are postponed just behind every delivery due now (their attempt not
//! counted), or, once its endpoint did not answer, deferred with the rest of its queue to their
//! next attempt. Either way what one sweep read moves out of the next one's way, so a backlog,
//! answering or not, makes room shard read by shard read for the users it shares its shard
//! with: a retry behind `n` earlier due deliveries is read within `n / per_shard` sweeps.
//!
//! [`DUE_SHARDS`]: crate::store::DUE_SHARDS

use futures_util::{stream, StreamExt};

use super::{Deliverer, Job, Tally};
use crate::app::App;
use crate::store::{Key, StoreError, DUE_SHARDS};

/// What one sweep reads and attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// The most due deliveries read from one shard (earliest first).
    pub per_shard: usize,
    /// The most attempts one webhook gets in one sweep.
    pub per_webhook: usize,
}

impl SweepLimits {
    /// A sweep reads up to 1,000 due deliveries of each of the 16 shards (about 2 MB of index
    /// pages, 256 read units, when a shard is full), and attempts up to 50 of one webhook.
    pub const DEFAULT: Self = Self {
        per_shard: 1_000,
        per_webhook: 50,
    };
}

/// How many shards a sweep reads at once.
const SHARD_READS_AT_ONCE: usize = 4;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Due deliveries the shards listed.
    pub due: usize,
    /// Shards whose read failed (their deliveries wait for the next sweep).
    pub unread_shards: usize,
    /// What the runs did (`taken`: those taken over for an attempt).
    pub tally: Tally,
}

/// Reads every shard's due deliveries and runs them. Fails only if no shard could be read.
pub async fn sweep(app: &App, deliverer: &Deliverer) -> Result<SweepReport, StoreError> {
    let now = app.clock.now();
    let limits = deliverer.sweep;
    let reads: Vec<_> = stream::iter(Key::due_shards())
        .map(|shard| async move {
            let read = app
                .store
                .due_deliveries(&shard, now, limits.per_shard)
                .await;
            (shard, read)
        })
        .buffered(SHARD_READS_AT_ONCE)
        .collect()
        .await;
    let mut report = SweepReport::default();
    let mut jobs = Vec::new();
    let mut last_error = None;
    for (shard, read) in reads {
        match read {
            Ok(due) => jobs.extend(due.into_iter().map(Job::Due)),
            Err(e) => {
                tracing::error!(error = %e, shard, "reading a shard of due deliveries failed");
                report.unread_shards += 1;
                last_error = Some(e);
            }
        }
    }
    if report.unread_shards == usize::from(DUE_SHARDS) {
        if let Some(e) = last_error {
            return Err(e);
        }
    }
    report.due = jobs.len();
    report.tally = deliverer.run(app, jobs, Some(limits.per_webhook)).await;
    Ok(report)
}
