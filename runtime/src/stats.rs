//! Counters about the sandbox that operators watch; the host exports them as
//! Prometheus metrics. Reading them costs a few atomic loads.

use crate::policy::{Capability, Decision, Rule, RULES};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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
    instances: AtomicU64,
    instantiate_nanos: AtomicU64,
    refusals: [AtomicU64; CAPABILITY_LABELS.len()],
    overdrafts: [AtomicU64; crate::budget::KIND_LABELS.len()],
    explained: [AtomicU64; RULES.len()],
}

impl Counters {
    /// Counts an instance that was just created.
    pub(crate) fn instance_started(&self, instantiation: Duration) {
        self.instances.fetch_add(1, Relaxed);
        self.instantiate_nanos
            .fetch_add(instantiation.as_nanos() as u64, Relaxed);
    }

    /// Counts a decision that did not allow what the code asked for.
    pub(crate) fn decided(&self, capability: Capability, decision: &Decision) {
        if !matches!(decision, Decision::Allow(_)) {
            self.refusals[label_index(capability)].fetch_add(1, Relaxed);
        }
    }

    /// Counts a refusal (or a surprising allow) by its seed-table row.
    pub(crate) fn explained(&self, rule: Rule) {
        self.explained[rule.index()].fetch_add(1, Relaxed);
    }

    /// Counts a call tree that spent one of its budgets.
    pub(crate) fn overdrawn(&self, kind: crate::budget::Kind) {
        self.overdrafts[kind as usize].fetch_add(1, Relaxed);
    }

    /// The counters, with the admission figures passed in.
    pub(crate) fn snapshot(
        &self,
        instances_in_use: u32,
        max_instances: u32,
        user_instances: u32,
        capacity_refusals: Vec<(&'static str, u64)>,
    ) -> SandboxStats {
        SandboxStats {
            instances_in_use,
            max_instances,
            user_instances,
            capacity_refusals,
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
            denials: RULES
                .iter()
                .zip(&self.explained)
                .map(|(rule, count)| (rule.label(), count.load(Relaxed)))
                .collect(),
        }
    }
}

/// What the sandbox has done since it started.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStats {
    /// Instances held now (calls running, nested ones and compiles included).
    pub instances_in_use: u32,
    /// The pool's size (`max_instances`).
    pub max_instances: u32,
    /// Most instances one user's call trees may hold at once.
    pub user_instances: u32,
    /// Calls refused for want of an instance, by limit (`user_share`, `pool`).
    pub capacity_refusals: Vec<(&'static str, u64)>,
    /// Instances created.
    pub instances: u64,
    /// Time spent instantiating them, in all.
    pub instantiate_seconds: f64,
    /// Capability requests the policy did not allow (a permission error,
    /// `undefined` or a no-op), by capability.
    pub refusals: Vec<(&'static str, u64)>,
    /// Call trees that spent a budget, by budget.
    pub overdrafts: Vec<(&'static str, u64)>,
    /// Refusals (and library `console.email`s reaching the caller), by
    /// the seed-table row they come from.
    pub denials: Vec<(&'static str, u64)>,
}
