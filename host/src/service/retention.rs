//! The pruner: a thread that deletes what retention no longer keeps, in
//! batches, between requests rather than on their path.

use super::{Service, ServiceResult};
use crate::store::{now, Retention};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows of each kind one batch deletes.
const BATCH: u32 = 2_000;
/// Pause between two full batches, so the store's lock is shared.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);
/// Most batches of one pass; the rest waits for the next pass.
const MAX_BATCHES: usize = 50;

impl Service {
    /// Starts the pruner: every `interval`, prunes what `retention` no
    /// longer keeps, until shutdown.
    pub fn start_pruner(
        self: &Arc<Self>,
        retention: Retention,
        interval: Duration,
    ) -> ServiceResult<()> {
        self.spawn_background("pruner", move |service| {
            while !service.is_stopping() {
                service.prune_once(&retention);
                let wake = Instant::now() + interval;
                while Instant::now() < wake && !service.is_stopping() {
                    std::thread::sleep(interval.min(Duration::from_millis(100)));
                }
            }
        })
    }

    /// One pass: batches until one is not full (or [`MAX_BATCHES`]).
    fn prune_once(&self, retention: &Retention) {
        let started = Instant::now();
        let mut total = crate::store::Pruned::default();
        for _ in 0..MAX_BATCHES {
            let pruned = match self.store.prune(retention, now(), BATCH) {
                Ok(pruned) => pruned,
                Err(error) => {
                    tracing::warn!(%error, "pruning old rows failed; trying again next pass");
                    return;
                }
            };
            for (kind, rows) in [
                ("evaluations", pruned.evaluations),
                ("jobs", pruned.jobs),
                ("emails", pruned.emails),
            ] {
                self.metrics
                    .pruned_rows
                    .with_label_values(&[kind])
                    .inc_by(rows);
            }
            total.evaluations += pruned.evaluations;
            total.jobs += pruned.jobs;
            total.emails += pruned.emails;
            if !pruned.full(BATCH) || self.is_stopping() {
                break;
            }
            std::thread::sleep(BETWEEN_BATCHES);
        }
        if total != crate::store::Pruned::default() {
            tracing::info!(
                evaluations = total.evaluations,
                jobs = total.jobs,
                emails = total.emails,
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "pruned old rows"
            );
        }
    }
}
