//! Retention: how long evaluation records, finished jobs and emails are
//! kept, and the bookkeeping both stores share to prune them in small
//! batches off the request path.
//!
//! Row ids grow with time in every pruned table, so "older than" is
//! answered from the oldest rows by id, never by scanning a whole table;
//! the per-user count is checked for the users whose records this process
//! wrote since the last pass (an index lookup each).

use std::collections::HashSet;
use std::sync::Mutex;

/// What is kept; a zero keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Seconds an evaluation record is kept.
    pub evaluation_age: i64,
    /// Newest evaluation records kept per user.
    pub evaluations_per_user: u32,
    /// Seconds a finished (done or failed) job is kept.
    pub job_age: i64,
    /// Seconds an email is kept.
    pub email_age: i64,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: i64 = 24 * 60 * 60;
        Retention {
            evaluation_age: 7 * DAY,
            evaluations_per_user: 10_000,
            job_age: 7 * DAY,
            email_age: 30 * DAY,
        }
    }
}

/// Rows one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Evaluation records.
    pub evaluations: u64,
    /// Finished jobs.
    pub jobs: u64,
    /// Emails.
    pub emails: u64,
}

impl Pruned {
    /// Whether some kind filled its batch (so there may be more to prune).
    pub fn full(&self, batch: u32) -> bool {
        let batch = u64::from(batch);
        self.evaluations >= batch || self.jobs >= batch || self.emails >= batch
    }
}

/// The users whose evaluation records were written since the last pass.
#[derive(Default)]
pub(super) struct Writers(Mutex<HashSet<String>>);

impl Writers {
    /// Notes a write for `viewer`.
    pub(super) fn wrote(&self, viewer: &str) {
        let mut writers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !writers.contains(viewer) {
            writers.insert(viewer.to_string());
        }
    }

    /// The users to check now (the set starts again empty).
    pub(super) fn take(&self) -> Vec<String> {
        let mut writers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *writers).into_iter().collect()
    }
}
