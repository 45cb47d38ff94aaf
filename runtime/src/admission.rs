//! Admission of instances. Every instance a call tree holds — the
//! top-level call's and each nested library or `api()` call's — counts
//! against the pool (`max_instances`, the pooling allocator's size) and
//! against the share of the pool one payer may hold: the user whose request
//! started the tree, whoever's code the nested calls run. So a storm of
//! deep call trees from one user fills that user's share and is refused
//! there, while other users' calls still find instances.
//!
//! A call that finds no room is refused at once; nothing waits for an
//! instance. A nested call that waited would hold its tree's instances
//! while waiting, and trees waiting on each other's instances would hold
//! the whole pool until their deadlines (hold-and-wait). Refused at once,
//! the tree ends, its instances go back to the pool, and the client is told
//! to come back (429 for a payer's share, 503 for the pool). A tree holds
//! at most `max_depth + 1` instances: nested calls run one at a time, on
//! the caller's thread, so its instances form a stack.
//!
//! A new tree's first instance is admitted only while a quarter of the
//! pool (and of the payer's share) stays free: that quarter is for the
//! nested calls of trees already running. Without it, under overload new
//! trees take every instance that running trees give back, and every tree
//! ends half-way for want of its next instance (the pool bench in
//! docs/perf.md: a few hundred nested calls a second instead of ~10,000);
//! with it, running trees finish and new ones wait their turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Which limit refused an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityScope {
    /// The payer holds its whole share of the pool (429).
    User,
    /// The pool is full (503).
    Server,
}

impl CapacityScope {
    /// The scope as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            CapacityScope::User => "user_share",
            CapacityScope::Server => "pool",
        }
    }
}

/// No instance for a call: the whole call tree ends with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Which limit was reached.
    pub scope: CapacityScope,
    /// What to tell the client.
    pub message: String,
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Capacity {}

/// Whose share a call tree's instances count against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payer {
    /// The user who started the tree (`""` for anonymous callers, who share one count).
    User(Box<str>),
    /// Compiling a val: counted against the pool only.
    Pool,
}

impl Payer {
    /// The payer of a tree started by `user` (anonymous without one).
    pub(crate) fn user(user: Option<&str>) -> Payer {
        Payer::User(user.unwrap_or("").into())
    }
}

#[derive(Default)]
struct Held {
    total: u32,
    by_user: HashMap<Box<str>, u32>,
}

/// The counts of instances held, by payer.
pub(crate) struct Admission {
    capacity: u32,
    per_user: u32,
    held: Mutex<Held>,
    refusals: [AtomicU64; 2],
}

/// One admitted instance; given back when dropped.
pub(crate) struct Lease<'a> {
    admission: &'a Admission,
    payer: &'a Payer,
}

impl Admission {
    /// A pool of `capacity` instances of which one user may hold
    /// `user_share` (a fraction, at least one instance).
    pub(crate) fn new(capacity: u32, user_share: f64) -> Admission {
        let per_user = ((f64::from(capacity) * user_share.clamp(0.0, 1.0)) as u32).max(1);
        Admission {
            capacity,
            per_user,
            held: Mutex::default(),
            refusals: Default::default(),
        }
    }

    /// Most instances one user's call trees may hold at once.
    pub(crate) fn per_user(&self) -> u32 {
        self.per_user
    }

    /// Takes one instance for `payer` — the first of a new tree (`root`)
    /// or one for a nested call — or says which limit refuses it.
    pub(crate) fn acquire<'a>(
        &'a self,
        payer: &'a Payer,
        root: bool,
    ) -> Result<Lease<'a>, Capacity> {
        // A new tree leaves a quarter free for running trees' nested calls.
        let room = |limit: u32| if root { limit - limit / 4 } else { limit };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.total >= room(self.capacity) {
            let in_use = held.total;
            drop(held);
            return Err(self.refuse(
                CapacityScope::Server,
                format!(
                    "no capacity: {in_use} of the server's {} sandbox instances are in use; try again shortly",
                    self.capacity
                ),
            ));
        }
        if let Payer::User(user) = payer {
            let mine = held.by_user.get(user).copied().unwrap_or(0);
            if mine >= room(self.per_user) {
                drop(held);
                return Err(self.refuse(
                    CapacityScope::User,
                    format!(
                        "no capacity: your calls hold {mine} of the {} sandbox instances one user may hold \
                         (nested calls included); try again when some end",
                        self.per_user
                    ),
                ));
            }
            *held.by_user.entry(user.clone()).or_default() += 1;
        }
        held.total += 1;
        Ok(Lease {
            admission: self,
            payer,
        })
    }

    fn refuse(&self, scope: CapacityScope, message: String) -> Capacity {
        self.refusals[scope as usize].fetch_add(1, Relaxed);
        Capacity { scope, message }
    }

    /// Instances held now.
    pub(crate) fn in_use(&self) -> u32 {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Refusals so far, by scope label.
    pub(crate) fn refusals(&self) -> Vec<(&'static str, u64)> {
        [CapacityScope::User, CapacityScope::Server]
            .into_iter()
            .map(|scope| (scope.label(), self.refusals[scope as usize].load(Relaxed)))
            .collect()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut held = self
            .admission
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held.total -= 1;
        if let Payer::User(user) = self.payer {
            if let Some(count) = held.by_user.get_mut(user) {
                *count -= 1;
                if *count == 0 {
                    held.by_user.remove(user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_their_share_and_the_pool_at_most_its_size() {
        let admission = Admission::new(4, 0.5);
        let (alice, bob, carol) = (
            Payer::user(Some("alice")),
            Payer::user(Some("bob")),
            Payer::user(Some("carol")),
        );
        let a1 = admission.acquire(&alice, true).unwrap();
        let _a2 = admission.acquire(&alice, false).unwrap();
        assert_eq!(
            admission.acquire(&alice, false).err().map(|c| c.scope),
            Some(CapacityScope::User)
        );
        let _b1 = admission.acquire(&bob, true).unwrap();
        let _b2 = admission.acquire(&bob, false).unwrap();
        assert_eq!(
            admission.acquire(&carol, false).err().map(|c| c.scope),
            Some(CapacityScope::Server)
        );
        assert_eq!(
            admission
                .acquire(&Payer::Pool, false)
                .err()
                .map(|c| c.scope),
            Some(CapacityScope::Server)
        );
        assert_eq!(admission.in_use(), 4);
        drop(a1);
        assert_eq!(admission.in_use(), 3);
        let _c1 = admission.acquire(&carol, false).unwrap();
        assert_eq!(admission.refusals(), vec![("user_share", 1), ("pool", 2)]);
    }

    #[test]
    fn anonymous_callers_share_one_count_and_compiles_only_the_pool() {
        let admission = Admission::new(10, 0.2);
        let anonymous = Payer::user(None);
        let _x = admission.acquire(&anonymous, true).unwrap();
        let _y = admission.acquire(&anonymous, false).unwrap();
        assert!(admission.acquire(&anonymous, false).is_err());
        let compiles: Vec<_> = (0..8)
            .map(|_| admission.acquire(&Payer::Pool, false).unwrap())
            .collect();
        assert_eq!(admission.in_use(), 10);
        drop(compiles);
        assert_eq!(admission.in_use(), 2);
    }

    #[test]
    fn a_new_tree_leaves_a_quarter_free_for_running_trees() {
        let admission = Admission::new(8, 1.0);
        let alice = Payer::user(Some("alice"));
        let roots: Vec<_> = (0..6)
            .map(|_| admission.acquire(&alice, true).unwrap())
            .collect();
        assert!(
            admission.acquire(&alice, true).is_err(),
            "6 of 8 taken: no new tree"
        );
        let nested: Vec<_> = (0..2)
            .map(|_| admission.acquire(&alice, false).unwrap())
            .collect();
        assert_eq!(admission.in_use(), 8);
        drop((roots, nested));
    }

    #[test]
    fn a_share_is_at_least_one_instance() {
        assert_eq!(Admission::new(3, 0.01).per_user(), 1);
        assert_eq!(Admission::new(100, 2.0).per_user(), 100);
    }
}
