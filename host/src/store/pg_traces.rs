//! Evaluation records on PostgreSQL, batched per node as in the embedded
//! store: `add_evaluation` queues a record and returns; a writer thread
//! inserts what is queued with one multi-row `INSERT` every 10 ms or every
//! [`BATCH`] records, on a pooled connection it holds only for the insert.
//! Reads that must see a node's own records ([`TraceBatch::flush`]) wait
//! for the queue to be written. While the database is unreachable records
//! stay queued (up to [`MAX_QUEUED`]; past it the oldest are dropped, with
//! a log line) and are written when it is back.

use super::{lock, now};
use postgres::NoTls;
use r2d2::Pool;
use r2d2_postgres::PostgresConnectionManager;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Most records in one `INSERT`.
const BATCH: usize = 512;
/// Most records waiting before the oldest are dropped.
const MAX_QUEUED: usize = 100_000;
/// How long records wait for more to join them.
const LINGER: Duration = Duration::from_millis(10);

/// One record not yet written.
struct Queued {
    viewer: String,
    request_id: Option<String>,
    record: String,
    created_at: i64,
}

#[derive(Default)]
struct State {
    queued: Vec<Queued>,
    /// Records taken by the writer and not yet committed.
    writing: usize,
    closed: bool,
}

/// The queue and its writer thread.
pub(super) struct TraceBatch {
    state: Mutex<State>,
    /// Wakes the writer.
    more: Condvar,
    /// Wakes flushers when a batch is written.
    written: Condvar,
}

impl TraceBatch {
    /// Starts the writer on `pool`.
    pub(super) fn start(pool: Pool<PostgresConnectionManager<NoTls>>) -> Arc<TraceBatch> {
        let batch = Arc::new(TraceBatch {
            state: Mutex::default(),
            more: Condvar::new(),
            written: Condvar::new(),
        });
        let writer = batch.clone();
        std::thread::Builder::new()
            .name("valbox-pg-traces".into())
            .spawn(move || writer.run(&pool))
            .expect("starting the evaluation record writer");
        batch
    }

    /// Queues one record.
    pub(super) fn add(&self, viewer: &str, request_id: Option<&str>, record: String) {
        let mut state = lock(&self.state);
        if state.queued.len() >= MAX_QUEUED {
            state.queued.remove(0);
            tracing::warn!(
                "the database has not taken evaluation records for a while; dropping the oldest"
            );
        }
        state.queued.push(Queued {
            viewer: viewer.to_string(),
            request_id: request_id.map(str::to_string),
            record,
            created_at: now(),
        });
        if state.queued.len() == 1 || state.queued.len() >= BATCH {
            self.more.notify_one();
        }
    }

    /// Waits until every record queued so far is written (at most 5 s).
    pub(super) fn flush(&self) {
        let mut state = lock(&self.state);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (!state.queued.is_empty() || state.writing > 0) && !state.closed {
            self.more.notify_one();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .written
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Writes what is queued, then stops the writer.
    pub(super) fn close(&self) {
        self.flush();
        lock(&self.state).closed = true;
        self.more.notify_all();
    }

    fn run(&self, pool: &Pool<PostgresConnectionManager<NoTls>>) {
        loop {
            let batch: Vec<Queued> = {
                let mut state = lock(&self.state);
                while state.queued.is_empty() && !state.closed {
                    state = self.more.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.closed && state.queued.is_empty() {
                    return;
                }
                if state.queued.len() < BATCH && !state.closed {
                    // Let more join the batch.
                    state = self
                        .more
                        .wait_timeout(state, LINGER)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                let take = state.queued.len().min(BATCH);
                state.writing = take;
                state.queued.drain(..take).collect()
            };
            let result = insert(pool, &batch);
            let mut state = lock(&self.state);
            state.writing = 0;
            if let Err(error) = result {
                tracing::warn!(%error, records = batch.len(), "evaluation records not written yet; retrying");
                // Back in front, in order, to be written when the database is back.
                let rest = std::mem::take(&mut state.queued);
                state.queued = batch;
                state.queued.extend(rest);
                drop(state);
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            self.written.notify_all();
        }
    }
}

/// One multi-row `INSERT` of `batch`.
fn insert(pool: &Pool<PostgresConnectionManager<NoTls>>, batch: &[Queued]) -> Result<(), String> {
    let mut client = pool.get().map_err(|e| e.to_string())?;
    let mut sql =
        String::from("INSERT INTO evaluations (viewer, record, created_at, request_id) VALUES ");
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::with_capacity(batch.len() * 4);
    for (n, queued) in batch.iter().enumerate() {
        if n > 0 {
            sql.push(',');
        }
        let first = n * 4;
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${})",
            first + 1,
            first + 2,
            first + 3,
            first + 4
        ));
        params.push(&queued.viewer);
        params.push(&queued.record);
        params.push(&queued.created_at);
        params.push(&queued.request_id);
    }
    client
        .execute(&sql, &params)
        .map(drop)
        .map_err(|e| e.to_string())
}
