//! The threads that run requests' blocking work (the store, the sandbox).
//!
//! A few *runners* (one per core) take jobs from one queue and run them one
//! after the other, without going to sleep while work is queued: under load
//! a request's call starts on a thread that is already running, instead of
//! waking one of many threads (tokio's blocking pool gave every concurrent
//! request a thread of its own, and 2 cores spent a large part of their time
//! switching between them; docs/perf.md).
//!
//! A job may wait (timers, `fetch`, a turn for a long call) or compute for
//! long. A runner whose job has run for [`STUCK_AFTER`] no longer counts,
//! and a watcher starts another runner while jobs are queued, so queued
//! work never waits on a stuck one for longer than a tick of the watcher;
//! runners beyond the number of cores leave when their job ends.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A runner whose job has run this long no longer counts as running work.
const STUCK_AFTER: Duration = Duration::from_millis(2);
/// How often the watcher looks for stuck runners while jobs are queued.
const WATCH_TICK: Duration = Duration::from_millis(1);

type Job = Box<dyn FnOnce() + Send>;

/// The runners and their queue.
pub struct Workers {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Runners wait here for jobs.
    work: Condvar,
    /// The watcher waits here for jobs that found no idle runner.
    watch: Condvar,
    /// Runners that run work when none is stuck.
    cores: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Runners waiting for a job.
    idle: usize,
    /// Of those, runners woken for a job and not yet up.
    waking: usize,
    /// When each runner's job started (`None`: between jobs), by runner.
    started: Vec<Option<Instant>>,
    /// Runner slots whose thread has left, for the next runner to take.
    free_slots: Vec<usize>,
    /// Runners alive.
    runners: usize,
    /// Whether the watcher sleeps until a job comes.
    watcher_waiting: bool,
}

impl State {
    fn stuck(&self, now: Instant) -> usize {
        self.started
            .iter()
            .flatten()
            .filter(|started| now.duration_since(**started) >= STUCK_AFTER)
            .count()
    }
}

impl Workers {
    /// Runners for a machine with `cores` cores (at least one).
    pub fn new(cores: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            watch: Condvar::new(),
            cores: cores.max(1),
        });
        let watcher = shared.clone();
        std::thread::Builder::new()
            .name("valbox-watch".into())
            .spawn(move || watch(&watcher))
            .expect("starting the runners' watcher");
        Workers { shared }
    }

    /// Queues `work` for a runner at once; the future answers what it
    /// returned, or `None` when it panicked.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Option<T>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = answer.send(catch_unwind(AssertUnwindSafe(work)).ok());
        }));
        async move { answered.await.ok().flatten() }
    }

    fn submit(&self, job: Job) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        state.jobs.push_back(job);
        if state.idle > state.waking {
            state.waking += 1;
            shared.work.notify_one();
        } else if state.runners < shared.cores {
            start_runner(shared, &mut state);
        } else if state.watcher_waiting {
            // Every runner is busy: the watcher sees that the job gets one.
            state.watcher_waiting = false;
            shared.watch.notify_one();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_runner(shared: &Arc<Shared>, state: &mut State) {
    let slot = state.free_slots.pop().unwrap_or_else(|| {
        state.started.push(None);
        state.started.len() - 1
    });
    let shared_by_runner = shared.clone();
    let started = std::thread::Builder::new()
        .name("valbox-runner".into())
        // Nested library calls run on the runner's stack too.
        .stack_size(valbox_runtime::HOST_THREAD_STACK)
        .spawn(move || runner(&shared_by_runner, slot));
    match started {
        Ok(_) => state.runners += 1,
        Err(error) => {
            state.free_slots.push(slot);
            tracing::error!(%error, "a runner thread could not be started");
        }
    }
}

/// A runner: takes jobs until it is one too many.
fn runner(shared: &Shared, slot: usize) {
    let mut state = lock(&shared.state);
    loop {
        let Some(job) = state.jobs.pop_front() else {
            state.idle += 1;
            state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
            state.waking = state.waking.saturating_sub(1);
            continue;
        };
        state.started[slot] = Some(Instant::now());
        drop(state);
        job();
        state = lock(&shared.state);
        state.started[slot] = None;
        let working = state.runners - state.stuck(Instant::now());
        if working > shared.cores {
            state.runners -= 1;
            state.free_slots.push(slot);
            return;
        }
    }
}

/// The watcher: while jobs wait, looks every [`WATCH_TICK`]: wakes idle
/// runners for them (should a wake-up have gone astray), and starts a
/// runner for each stuck one.
fn watch(shared: &Arc<Shared>) {
    let mut state = lock(&shared.state);
    loop {
        while state.jobs.is_empty() {
            state.watcher_waiting = true;
            state = shared.watch.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        drop(state);
        std::thread::sleep(WATCH_TICK);
        state = lock(&shared.state);
        if state.jobs.is_empty() {
            continue;
        }
        if state.idle > 0 {
            shared.work.notify_all();
            continue;
        }
        let working = state.runners - state.stuck(Instant::now());
        for _ in working..shared.cores {
            start_runner(shared, &mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_each_job() {
        let workers = Workers::new(2);
        let answers = answers_of((0..100).map(|i| workers.run(move || i * 2))).await;
        assert_eq!(answers, (0..100).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_none_and_the_runner_goes_on() {
        let workers = Workers::new(1);
        assert_eq!(workers.run(|| -> u32 { panic!("boom") }).await, None);
        assert_eq!(workers.run(|| 7).await, Some(7));
    }

    /// Jobs that wait for long (here: on each other) do not keep queued
    /// jobs from running: with one core, ten jobs that each wait until all
    /// ten have started all finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_jobs_do_not_hold_up_the_queue() {
        let workers = Workers::new(1);
        let started = Arc::new(AtomicUsize::new(0));
        let jobs = (0..10).map(|_| {
            let started = started.clone();
            workers.run(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let give_up = Instant::now() + Duration::from_secs(10);
                while started.load(Ordering::SeqCst) < 10 && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(1));
                }
                started.load(Ordering::SeqCst)
            })
        });
        let answers = answers_of(jobs).await;
        assert_eq!(answers, vec![Some(10); 10]);
        // The extra runners leave once their jobs end.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(lock(&workers.shared.state).runners <= 1);
    }

    /// The answers of jobs already queued (`Workers::run` queues at once),
    /// in order.
    async fn answers_of<F: std::future::Future>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut answers = Vec::new();
        let futures: Vec<_> = futures.map(Box::pin).collect();
        for future in futures {
            answers.push(future.await);
        }
        answers
    }
}
