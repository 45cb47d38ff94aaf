//! Operator settings of the sandbox: limits and where compiled images are cached.

use std::path::PathBuf;
use std::time::Duration;

/// Limits and settings shared by every call of one [`crate::Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Wall-clock deadline of one call (default 5 s), enforced by epoch interruption.
    pub deadline: Duration,
    /// Largest linear memory one instance may grow to, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// Long call trees (past 2 ms of CPU time) running guest code at once;
    /// more wait their turn, handed on at every tick. Short calls never wait
    /// (default: one less than the number of cores, at least 1).
    pub cpu_turns: usize,
    /// Most instances alive at once; sizes the pooling allocator (default
    /// 128). Every instance of a call tree counts (see `admission.rs`).
    pub max_instances: u32,
    /// The fraction of `max_instances` one user's call trees may hold at
    /// once (default 0.5): a storm from one user is refused at their share.
    pub user_instance_share: f64,
    /// Deepest nesting of val calls (default 16).
    pub max_depth: u32,
    /// Outbound `fetch`: timeout, size, host lists, address guard.
    pub fetch: crate::fetch::FetchPolicy,
    /// Policy settings (`library_writes`).
    pub policy: crate::policy::PolicySettings,
    /// Record every refusal of the policy in the evaluation record of the
    /// call that asked (default on; `--explain-denials false` turns the
    /// records off, the per-rule counters stay).
    pub explain_denials: bool,
    /// Most bytes of `console` output one call may produce (default 1 MiB).
    pub max_log_bytes: usize,
    /// Largest arguments of a call, as JSON or tagged JSON (default 4 MiB).
    pub max_args_bytes: usize,
    /// Largest result of a call, as JSON or tagged JSON (default 4 MiB).
    pub max_result_bytes: usize,
    /// Largest `console.email`, subject and body together (default 256 KiB).
    pub max_email_bytes: usize,
    /// What one call tree may spend: val writes and bytes, emails, fetches.
    pub budgets: crate::budget::CallBudgets,
    /// Bytes of each pooled linear memory kept mapped between calls and
    /// reset by copying instead of being unmapped and faulted in again
    /// (default 2 MiB, more than the guest's whole memory;
    /// docs/perf.md has the measurements behind it).
    pub keep_resident_bytes: usize,
    /// Folder for compiled guest images, so a restart skips the Cranelift
    /// compile. `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
}

impl SandboxConfig {
    /// The instance pool a server sizes by default: every instance at
    /// `memory_limit` fits in half of the machine's memory (the rest is for
    /// the host, its caches and the store), between 16 and 1000 instances.
    pub fn instances_fitting_memory(memory_limit: usize) -> u32 {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(8 << 30);
        (memory / 2 / memory_limit.max(1) as u64).clamp(16, 1000) as u32
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            deadline: Duration::from_secs(5),
            memory_limit: 64 << 20,
            cpu_turns: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
            max_instances: 128,
            user_instance_share: 0.5,
            max_depth: 16,
            policy: crate::policy::PolicySettings::default(),
            explain_denials: true,
            fetch: crate::fetch::FetchPolicy::default(),
            max_log_bytes: 1 << 20,
            max_args_bytes: 4 << 20,
            max_result_bytes: 4 << 20,
            max_email_bytes: 256 << 10,
            budgets: crate::budget::CallBudgets::default(),
            keep_resident_bytes: 2 << 20,
            cache_dir: None,
        }
    }
}
