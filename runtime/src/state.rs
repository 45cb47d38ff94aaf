//! What one store (one call's instance) holds: the data host imports read and
//! write. A store lives exactly as long as one call.

use crate::error::LimitExceeded;
use serde::{Deserialize, Serialize};
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

/// Per-store data of one call.
pub(crate) struct CallState {
    pub(crate) logs: Vec<LogLine>,
    log_bytes: usize,
    max_log_bytes: usize,
    pub(crate) limits: StoreLimits,
}

impl CallState {
    pub(crate) fn for_call(memory_limit: usize, max_log_bytes: usize) -> Self {
        CallState {
            logs: Vec::new(),
            log_bytes: 0,
            max_log_bytes,
            limits: StoreLimitsBuilder::new().memory_size(memory_limit).build(),
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
