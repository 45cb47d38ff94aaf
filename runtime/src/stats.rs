//! Counters about the sandbox that operators watch; the host exports them as
//! Prometheus metrics. Reading them costs a few atomic loads.

use crate::policy::{Capability, Decision};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The capabilities as metric labels, in the order of [`label_index`].
const CAPABILITY_LABELS: [&str; 5] = [
    "read_secret",
    "read_val",
    "write_val",
    "send_email",
    "fetch",
];

fn label_index(capability: Capability) -> usize {
    match capability {
        Capability::ReadSecret => 0,
        Capability::ReadVal(_) => 1,
        Capability::WriteVal => 2,
        Capability::SendEmail => 3,
        Capability::Fetch => 4,
    }
}

/// Live counters, shared by every store of a sandbox.
#[derive(Default)]
pub(crate) struct Counters {
    live_instances: AtomicI64,
    instances: AtomicU64,
    instantiate_nanos: AtomicU64,
    refusals: [AtomicU64; CAPABILITY_LABELS.len()],
    overdrafts: [AtomicU64; crate::budget::KIND_LABELS.len()],
}

impl Counters {
    /// Counts an instance that was just created, until the guard is dropped.
    pub(crate) fn instance_started(&self, instantiation: Duration) -> LiveInstance<'_> {
        self.instances.fetch_add(1, Relaxed);
        self.instantiate_nanos
            .fetch_add(instantiation.as_nanos() as u64, Relaxed);
        self.live_instances.fetch_add(1, Relaxed);
        LiveInstance(self)
    }

    /// Counts a decision that did not allow what the code asked for.
    pub(crate) fn decided(&self, capability: Capability, decision: &Decision) {
        if !matches!(decision, Decision::Allow(_)) {
            self.refusals[label_index(capability)].fetch_add(1, Relaxed);
        }
    }

    /// Counts a call tree that spent one of its budgets.
    pub(crate) fn overdrawn(&self, kind: crate::budget::Kind) {
        self.overdrafts[kind as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SandboxStats {
        SandboxStats {
            live_instances: self.live_instances.load(Relaxed),
            instances: self.instances.load(Relaxed),
            instantiate_seconds: self.instantiate_nanos.load(Relaxed) as f64 / 1e9,
            refusals: CAPABILITY_LABELS
                .iter()
                .zip(&self.refusals)
                .map(|(label, count)| (*label, count.load(Relaxed)))
                .collect(),
            overdrafts: crate::budget::KIND_LABELS
                .iter()
                .zip(&self.overdrafts)
                .map(|(label, count)| (*label, count.load(Relaxed)))
                .collect(),
        }
    }
}

/// An instance counted as live while this exists.
pub(crate) struct LiveInstance<'a>(&'a Counters);

impl Drop for LiveInstance<'_> {
    fn drop(&mut self) {
        self.0.live_instances.fetch_sub(1, Relaxed);
    }
}

/// What the sandbox has done since it started.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStats {
    /// Instances alive now (calls running, nested ones included).
    pub live_instances: i64,
    /// Instances created.
    pub instances: u64,
    /// Time spent instantiating them, in all.
    pub instantiate_seconds: f64,
    /// Capability requests the policy did not allow (a permission error,
    /// `undefined` or a no-op), by capability.
    pub refusals: Vec<(&'static str, u64)>,
    /// Call trees that spent a budget, by budget.
    pub overdrafts: Vec<(&'static str, u64)>,
}
