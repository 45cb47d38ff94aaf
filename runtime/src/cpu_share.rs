//! Fair shares of the CPU between long calls. A call tree that has used
//! [`LONG_CALL`] of CPU time (counted from the first epoch tick it sees, so
//! a short call never asks the clock) needs a turn to go on running guest
//! code; there are `turns` of them (default: one core fewer than the
//! machine has, at least one), handed on in order at every epoch tick when
//! others wait. Short calls — nearly all of them — never wait: however many
//! infinite loops are running, they share `turns` cores between them and
//! the other cores stay free for everyone else. Where the process may raise
//! a thread's priority back (root, `CAP_SYS_NICE` or `RLIMIT_NICE`), a long
//! call's thread also runs at the lowest priority (nice 19) until its tree
//! ends, so a short call that lands on its core runs first. Nested calls
//! run on their caller's thread and count towards its tree; a call waiting
//! on the network (`fetch`) gives its turn back while it waits.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Duration;

/// CPU time after which a call tree is long and needs a turn.
pub(crate) const LONG_CALL: Duration = Duration::from_millis(2);

/// The nice value of a long call's thread.
const LONG_CALL_NICE: i32 = 19;

/// Turns for long calls, handed from one to the next in arrival order: a
/// freed turn goes straight to the next waiter (one wake-up, no stampede).
pub(crate) struct CpuShare {
    queue: Mutex<TurnQueue>,
    /// Whether long calls' threads are lowered in priority (and back).
    renice: bool,
}

/// Whether this process can lower a thread's priority and raise it back:
/// tried once on a thread of its own.
fn can_renice() -> bool {
    std::thread::spawn(|| {
        let me = Some(rustix::thread::gettid());
        let Ok(nice) = rustix::process::getpriority_process(me) else {
            return false;
        };
        rustix::process::setpriority_process(me, LONG_CALL_NICE).is_ok()
            && rustix::process::setpriority_process(me, nice).is_ok()
    })
    .join()
    .unwrap_or(false)
}

#[derive(Default)]
struct TurnQueue {
    free: usize,
    waiting: VecDeque<Arc<Waiter>>,
}

/// A thread waiting for a turn.
struct Waiter {
    thread: Thread,
    granted: AtomicBool,
}

/// What this thread's call tree holds of a share.
#[derive(Clone, Copy)]
struct Held {
    /// The share (its address; 0 for none).
    share: usize,
    /// Calls of the tree now on this thread's stack.
    depth: usize,
    /// The thread's CPU time at the tree's first tick.
    first_tick: Option<Duration>,
    /// Whether the tree holds a turn.
    has_turn: bool,
    /// The thread's nice value before the tree became long, when it was lowered.
    nice_before: Option<i32>,
}

const NOTHING_HELD: Held = Held {
    share: 0,
    depth: 0,
    first_tick: None,
    has_turn: false,
    nice_before: None,
};

thread_local! {
    static HELD: Cell<Held> = const { Cell::new(NOTHING_HELD) };
}

fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// Lowers this thread to [`LONG_CALL_NICE`]; the nice value it had, if it worked.
fn lower_priority() -> Option<i32> {
    let me = Some(rustix::thread::gettid());
    let nice = rustix::process::getpriority_process(me).ok()?;
    rustix::process::setpriority_process(me, LONG_CALL_NICE)
        .ok()
        .map(|()| nice)
}

/// A call inside a call tree; the outermost one gives back the tree's turn.
pub(crate) struct InTree<'a> {
    share: &'a CpuShare,
}

impl CpuShare {
    /// A share with `turns` long calls running guest code at once (at least one).
    pub(crate) fn new(turns: usize) -> Self {
        CpuShare {
            queue: Mutex::new(TurnQueue {
                free: turns.max(1),
                waiting: VecDeque::new(),
            }),
            renice: can_renice(),
        }
    }

    fn id(&self) -> usize {
        self as *const CpuShare as usize
    }

    fn lock(&self) -> MutexGuard<'_, TurnQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the start of a call: a new call tree, or a nested call of the
    /// tree already running on this thread.
    pub(crate) fn enter(&self) -> InTree<'_> {
        let mut held = HELD.get();
        if held.share == self.id() {
            held.depth += 1;
        } else {
            held = Held {
                share: self.id(),
                depth: 1,
                first_tick: None,
                has_turn: false,
                nice_before: None,
            };
        }
        HELD.set(held);
        InTree { share: self }
    }

    /// Called at each epoch tick. A tree that has become long waits for a
    /// turn; one holding a turn hands it on when another long call waits.
    pub(crate) fn tick(&self) {
        let mut held = HELD.get();
        if held.share != self.id() {
            return;
        }
        if held.has_turn {
            if !self.lock().waiting.is_empty() {
                self.give_back();
                self.wait_for_turn();
            }
        } else {
            let now = thread_cpu_time();
            match held.first_tick {
                None => held.first_tick = Some(now),
                Some(first) if now.saturating_sub(first) >= LONG_CALL => {
                    if self.renice {
                        held.nice_before = lower_priority();
                    }
                    self.wait_for_turn();
                    held.has_turn = true;
                }
                Some(_) => {}
            }
            HELD.set(held);
        }
    }

    /// Runs `wait` (blocking I/O, no guest code) with the tree's turn given back.
    pub(crate) fn without_turn<T>(&self, wait: impl FnOnce() -> T) -> T {
        let held = HELD.get();
        if held.share != self.id() || !held.has_turn {
            return wait();
        }
        self.give_back();
        let result = wait();
        self.wait_for_turn();
        result
    }

    fn wait_for_turn(&self) {
        let waiter = {
            let mut queue = self.lock();
            if queue.free > 0 && queue.waiting.is_empty() {
                queue.free -= 1;
                return;
            }
            let waiter = Arc::new(Waiter {
                thread: std::thread::current(),
                granted: AtomicBool::new(false),
            });
            queue.waiting.push_back(waiter.clone());
            waiter
        };
        while !waiter.granted.load(Ordering::Acquire) {
            std::thread::park();
        }
    }

    /// Hands a turn to the next waiter, or frees it when nobody waits.
    fn give_back(&self) {
        let next = {
            let mut queue = self.lock();
            let next = queue.waiting.pop_front();
            if next.is_none() {
                queue.free += 1;
            }
            next
        };
        if let Some(waiter) = next {
            waiter.granted.store(true, Ordering::Release);
            waiter.thread.unpark();
        }
    }
}

impl Drop for InTree<'_> {
    fn drop(&mut self) {
        let mut held = HELD.get();
        if held.depth > 1 {
            held.depth -= 1;
            HELD.set(held);
        } else {
            HELD.set(NOTHING_HELD);
            if let Some(nice) = held.nice_before {
                let me = Some(rustix::thread::gettid());
                let _ = rustix::process::setpriority_process(me, nice);
            }
            if held.has_turn {
                self.share.give_back();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Burns CPU time on this thread, ticking like the epoch callback does.
    fn spin(share: &CpuShare, cpu: Duration, running: &AtomicUsize, most: &AtomicUsize) {
        let start = thread_cpu_time();
        while thread_cpu_time() - start < cpu {
            let held = HELD.get();
            if held.has_turn {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let until = thread_cpu_time() + Duration::from_micros(300);
                while thread_cpu_time() < until {}
                running.fetch_sub(1, Ordering::SeqCst);
            }
            share.tick();
        }
    }

    #[test]
    fn long_calls_run_at_most_the_configured_number_at_once() {
        let share = Arc::new(CpuShare::new(1));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (share, running, most) = (share.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let _call = share.enter();
                    spin(&share, Duration::from_millis(20), &running, &most);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(share.lock().free, 1, "every turn was given back");
    }

    #[test]
    fn short_calls_never_wait_even_when_every_turn_is_taken() {
        let share = CpuShare::new(1);
        // Take the only turn from another thread and keep it.
        share.wait_for_turn();
        let call = share.enter();
        share.tick(); // a call that has used almost no CPU time goes on
        assert!(!HELD.get().has_turn);
        drop(call);
        assert_eq!(share.lock().free, 0);
    }

    #[test]
    fn nested_calls_count_towards_their_tree() {
        let share = CpuShare::new(1);
        let outer = share.enter();
        let inner = share.enter();
        assert_eq!(HELD.get().depth, 2);
        share.tick();
        let until = thread_cpu_time() + LONG_CALL;
        while thread_cpu_time() < until {}
        share.tick();
        assert!(
            HELD.get().has_turn,
            "the tree became long and took the turn"
        );
        let me = Some(rustix::thread::gettid());
        let nice = || rustix::process::getpriority_process(me).unwrap();
        if share.renice {
            assert_eq!(
                nice(),
                LONG_CALL_NICE,
                "a long call runs at the lowest priority"
            );
        }
        drop(inner);
        assert_eq!(share.lock().free, 0, "the outer call still holds the turn");
        drop(outer);
        assert_eq!(share.lock().free, 1);
        assert_eq!(
            nice(),
            0,
            "the thread's priority is back when the tree ends"
        );
    }
}
