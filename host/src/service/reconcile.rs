//! The reconciler: with Redis, the store is the record of which jobs were
//! promised and Redis only carries them. Every `serve` and `worker` runs
//! this loop (no leader: adding a job Redis does not know is one atomic
//! script, so two reconcilers never add it twice): jobs the store holds as
//! queued or running for longer than [`GRACE`] that Redis no longer knows
//! (it restarted empty, or a job was stored while it was down) are added to
//! the stream again. Results are still written once, so a job delivered
//! twice has one result. Schedules need nothing here: their due ticks live
//! in the store, not in Redis.

use super::{Service, ServiceError, ServiceResult};
use crate::jobs::{JobWork, Queue};
use std::sync::Arc;
use std::time::Duration;

/// How long a stored job may be missing from Redis before it is added again
/// (covers the moment between storing a job and adding it to the stream).
pub const GRACE: Duration = Duration::from_secs(5);

/// How often the reconciler looks.
const EVERY: Duration = Duration::from_secs(2);

impl Service {
    /// Starts the reconciler thread (with Redis only).
    pub fn start_reconciler(self: &Arc<Self>) -> ServiceResult<()> {
        if !matches!(self.jobs, Queue::Redis(_)) {
            return Ok(());
        }
        self.spawn_background("reconciler", |service| {
            let mut waited = Duration::ZERO;
            while !service.is_stopping() {
                std::thread::sleep(Duration::from_millis(100));
                waited += Duration::from_millis(100);
                if waited < EVERY {
                    continue;
                }
                waited = Duration::ZERO;
                if let Err(error) = service.reconcile() {
                    tracing::warn!(%error, "reconciling the job queue failed; trying again");
                }
            }
        })
    }

    /// One pass: adds again every stale job Redis does not know; how many.
    pub fn reconcile(&self) -> ServiceResult<usize> {
        let Queue::Redis(producer) = &self.jobs else {
            return Ok(0);
        };
        let before = crate::store::now() - GRACE.as_secs() as i64;
        let mut added = 0;
        for job in self.store.stale_jobs(before, 1000)? {
            let work = match JobWork::parse_stored(&job.request) {
                Ok(work) => work,
                Err(error) => {
                    tracing::error!(job = %job.id, %error, "a stored job does not parse");
                    continue;
                }
            };
            let entry = self.job_entry(&job.id, &job.owner, &work);
            if producer
                .requeue_if_unknown(&entry)
                .map_err(ServiceError::Internal)?
            {
                added += 1;
                self.metrics.jobs_requeued.inc();
                tracing::info!(job = %job.id, owner = %job.owner, "job queued again: Redis did not know it");
            }
        }
        Ok(added)
    }
}
