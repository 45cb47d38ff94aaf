//! What one store (one call's instance) holds: the data host imports read and
//! write. A store lives exactly as long as one call.

use crate::admission::Payer;
use crate::budget::TreeBudget;
use crate::error::LimitExceeded;
use crate::evaluation::{Denial, Evaluation};
use crate::frame::Frame;
use crate::in_flight::InFlight;
use crate::response_sink::ResponseSink;
use crate::sandbox::Shared;
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wasmtime::{StoreLimits, StoreLimitsBuilder};

/// Severity of a `console` line, in the order of the WIT `log-level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

impl LogLevel {
    fn from_wit(level: i32) -> LogLevel {
        match level {
            1 => LogLevel::Info,
            2 => LogLevel::Warn,
            3 => LogLevel::Error,
            4 => LogLevel::Debug,
            _ => LogLevel::Log,
        }
    }
}

/// One line user code wrote with `console.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Which `console` method wrote it.
    pub level: LogLevel,
    /// The arguments, rendered and joined with spaces.
    pub message: String,
}

/// What every call of one tree shares: who pays for its instances and
/// what it has spent.
pub(crate) struct CallTree {
    /// Whose share of the instance pool the tree's instances count against.
    pub(crate) payer: Payer,
    /// What the tree has spent of its budgets.
    pub(crate) budget: TreeBudget,
    /// Whether a call of the tree recorded a denial (whose hint is filled
    /// when the tree ends).
    denied: std::sync::atomic::AtomicBool,
    /// Where the tree's first call streams its HTTP answer, until that
    /// call's store takes it.
    sink: std::sync::Mutex<Option<Arc<dyn ResponseSink>>>,
}

impl CallTree {
    /// A new tree paid for by `payer`, with nothing spent.
    pub(crate) fn new(payer: Payer) -> Arc<CallTree> {
        CallTree::answering(payer, None)
    }

    /// A new tree whose first call may stream its HTTP answer into `sink`.
    pub(crate) fn answering(payer: Payer, sink: Option<Arc<dyn ResponseSink>>) -> Arc<CallTree> {
        Arc::new(CallTree {
            payer,
            budget: TreeBudget::default(),
            denied: Default::default(),
            sink: std::sync::Mutex::new(sink),
        })
    }

    /// Notes that a call of the tree recorded a denial.
    pub(crate) fn mark_denied(&self) {
        self.denied
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether any call of the tree recorded a denial.
    pub(crate) fn denied(&self) -> bool {
        self.denied.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Per-store data of one call: its frame (fixed before the instance starts),
/// what it reaches, and what it has produced so far.
pub(crate) struct CallState {
    /// Whose resources and whose code; host imports consult only this.
    pub(crate) frame: Frame,
    /// The sandbox, for nested calls.
    pub(crate) shared: Arc<Shared>,
    /// Vals, secrets and email.
    pub(crate) world: Arc<dyn World>,
    /// The call tree this call belongs to (shared with nested calls).
    pub(crate) tree: Arc<CallTree>,
    /// Evaluation records of the calls this call made.
    pub(crate) calls: Vec<Evaluation>,
    /// What the policy refused this call's code (host imports add to it
    /// while they hold the state shared).
    pub(crate) denials: std::cell::RefCell<Vec<Denial>>,
    pub(crate) logs: Vec<LogLine>,
    /// Where this call streams its HTTP answer (the tree's first call only).
    pub(crate) sink: Option<Arc<dyn ResponseSink>>,
    /// Whether the answer's head went out through `sink`.
    pub(crate) streamed: bool,
    /// The requests this call's `fetch` has out.
    pub(crate) fetches: InFlight,
    log_bytes: usize,
    max_log_bytes: usize,
    pub(crate) limits: StoreLimits,
}

impl CallState {
    pub(crate) fn new(
        frame: Frame,
        shared: Arc<Shared>,
        world: Arc<dyn World>,
        tree: Arc<CallTree>,
    ) -> Self {
        let config = &shared.config;
        // The tree's first store is its first call; nested ones find none.
        let sink = tree.sink.lock().unwrap_or_else(|e| e.into_inner()).take();
        CallState {
            limits: StoreLimitsBuilder::new()
                .memory_size(config.memory_limit)
                .build(),
            max_log_bytes: config.max_log_bytes,
            frame,
            shared,
            world,
            tree,
            calls: Vec::new(),
            denials: Default::default(),
            logs: Vec::new(),
            sink,
            streamed: false,
            fetches: InFlight::default(),
            log_bytes: 0,
        }
    }

    /// Says in the call's log how many `fetch` requests were still running
    /// when the call ended (they go on to their deadline, unanswered).
    pub(crate) fn report_dropped_fetches(&mut self) {
        let running = self.fetches.running();
        if running > 0 {
            self.logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "valbox: {running} fetch request{} still running when the call ended {} dropped \
                     (a call ends with its result; await what must finish)",
                    if running == 1 { "" } else { "s" },
                    if running == 1 { "was" } else { "were" },
                ),
            });
        }
    }

    /// Appends a `console` line, ending the call once the log budget is spent.
    pub(crate) fn log(&mut self, level: i32, message: String) -> Result<(), LimitExceeded> {
        self.log_bytes += message.len();
        if self.log_bytes > self.max_log_bytes {
            return Err(LimitExceeded(format!(
                "console output exceeded {} bytes",
                self.max_log_bytes
            )));
        }
        self.logs.push(LogLine {
            level: LogLevel::from_wit(level),
            message,
        });
        Ok(())
    }
}
