//! The scheduled sweep (every minute): deliveries whose retry is due, or whose holder's lease
//! ran out, are taken over one by one (a conditional write: two sweeps never take the same
//! one) and run like a stream batch's.

use super::{Deliverer, Job, Tally};
use crate::app::App;
use crate::store::StoreError;

/// The most deliveries one sweep takes on; the rest wait for the next minute.
pub const MAX_PER_SWEEP: usize = 500;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Due deliveries the index listed.
    pub due: usize,
    /// Those this sweep took over.
    pub taken: usize,
    /// What the attempts did.
    pub tally: Tally,
}

/// Takes over and runs the deliveries due now. Fails only if the index cannot be read.
pub async fn sweep(app: &App, deliverer: &Deliverer) -> Result<SweepReport, StoreError> {
    let now = app.clock.now();
    let due = app.store.due_deliveries(now, MAX_PER_SWEEP).await?;
    let mut report = SweepReport {
        due: due.len(),
        ..SweepReport::default()
    };
    let mut jobs = Vec::new();
    for seen in due {
        let lease_until = deliverer.lease_until(app.clock.now());
        match app.store.take_due_delivery(&seen, lease_until).await {
            Ok(Some(held)) => jobs.push(Job {
                held,
                webhook: None,
            }),
            // Taken by another sweep, or finished, since the index was read.
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "taking over a due delivery failed");
            }
        }
    }
    report.taken = jobs.len();
    report.tally = deliverer.run(app, jobs).await;
    Ok(report)
}
