//! Fair shares of the CPU between calls. At most `turns` call trees run
//! guest code at once (default: one per core). At every epoch tick a call
//! that has someone waiting gives its turn away and queues again, behind
//! every call that has not run yet: a request that needs microseconds waits
//! about one tick behind an infinite loop, not its whole deadline. Nested
//! calls run on their caller's thread and turn; a call waiting on the
//! network (`fetch`) gives its turn back while it waits.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Turns to run guest code, handed out in order: calls that have not run yet
/// first, then calls that gave their turn away at a tick.
pub(crate) struct CpuShare {
    queue: Mutex<TurnQueue>,
    turn_freed: Condvar,
}

#[derive(Default)]
struct TurnQueue {
    free: usize,
    next_ticket: u64,
    /// Calls that have not run yet, oldest first.
    fresh: VecDeque<u64>,
    /// Calls that have run a tick and yielded, oldest first.
    yielded: VecDeque<u64>,
}

impl TurnQueue {
    fn next_in_line(&self) -> Option<u64> {
        self.fresh.front().or(self.yielded.front()).copied()
    }

    fn remove(&mut self, ticket: u64) {
        if self.fresh.front() == Some(&ticket) {
            self.fresh.pop_front();
        } else {
            self.yielded.retain(|t| *t != ticket);
        }
    }
}

thread_local! {
    /// The share whose turn this thread holds (its address; 0 for none), and
    /// how many nested calls on this thread are inside that turn.
    static HELD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A call tree's turn; given back when the outermost call on the thread ends.
pub(crate) struct Turn<'a> {
    share: &'a CpuShare,
}

impl CpuShare {
    /// A share with `turns` calls running guest code at once (at least one).
    pub(crate) fn new(turns: usize) -> Self {
        CpuShare {
            queue: Mutex::new(TurnQueue {
                free: turns.max(1),
                ..TurnQueue::default()
            }),
            turn_freed: Condvar::new(),
        }
    }

    fn id(&self) -> usize {
        self as *const CpuShare as usize
    }

    fn lock(&self) -> MutexGuard<'_, TurnQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a turn, unless this thread already holds one (a nested call).
    pub(crate) fn enter(&self) -> Turn<'_> {
        let (held, depth) = HELD.get();
        if held == self.id() {
            HELD.set((held, depth + 1));
        } else {
            self.wait_for_turn(false);
            HELD.set((self.id(), 1));
        }
        Turn { share: self }
    }

    fn wait_for_turn(&self, has_run: bool) {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        if has_run {
            queue.yielded.push_back(ticket);
        } else {
            queue.fresh.push_back(ticket);
        }
        while !(queue.free > 0 && queue.next_in_line() == Some(ticket)) {
            queue = self
                .turn_freed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
        queue.remove(ticket);
        queue.free -= 1;
        if queue.free > 0 && queue.next_in_line().is_some() {
            // Another turn is free and someone else is next: wake them too.
            self.turn_freed.notify_all();
        }
    }

    fn give_back(&self) {
        self.lock().free += 1;
        self.turn_freed.notify_all();
    }

    /// Called at each epoch tick: if calls are waiting, lets them go first
    /// and queues again behind every call that has not run yet.
    pub(crate) fn yield_if_others_wait(&self) {
        if HELD.get().0 != self.id() {
            return;
        }
        let waiting = {
            let queue = self.lock();
            !queue.fresh.is_empty() || !queue.yielded.is_empty()
        };
        if waiting {
            self.give_back();
            self.wait_for_turn(true);
        }
    }

    /// Runs `wait` (blocking I/O, no guest code) with the turn given back.
    pub(crate) fn without_turn<T>(&self, wait: impl FnOnce() -> T) -> T {
        if HELD.get().0 != self.id() {
            return wait();
        }
        self.give_back();
        let result = wait();
        self.wait_for_turn(true);
        result
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let (held, depth) = HELD.get();
        if depth > 1 {
            HELD.set((held, depth - 1));
        } else {
            HELD.set((0, 0));
            self.share.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn at_most_the_configured_number_of_turns_run_at_once() {
        let share = Arc::new(CpuShare::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (share, running, most) = (share.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let holding = || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_micros(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    };
                    for _ in 0..50 {
                        let _turn = share.enter();
                        holding();
                        share.yield_if_others_wait();
                        holding();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(share.lock().free, 2, "every turn was given back");
    }

    #[test]
    fn nested_calls_share_their_callers_turn() {
        let share = CpuShare::new(1);
        let outer = share.enter();
        let inner = share.enter(); // would wait forever if it asked for a second turn
        drop(inner);
        assert_eq!(share.lock().free, 0, "the outer call still holds the turn");
        drop(outer);
        assert_eq!(share.lock().free, 1);
    }

    #[test]
    fn a_new_call_goes_ahead_of_a_call_that_yields() {
        let share = Arc::new(CpuShare::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let long = share.enter();
        let newcomer = {
            let (share, order) = (share.clone(), order.clone());
            std::thread::spawn(move || {
                let _turn = share.enter();
                order.lock().unwrap().push("new call");
            })
        };
        while share.lock().fresh.is_empty() {
            std::thread::yield_now();
        }
        share.yield_if_others_wait();
        order.lock().unwrap().push("long call resumed");
        drop(long);
        newcomer.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["new call", "long call resumed"]);
    }
}
