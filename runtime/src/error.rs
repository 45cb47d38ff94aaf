//! How a sandbox call or compile can fail: one variant per way, each message
//! saying which limit or which part failed.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A JavaScript error as the guest described it: what user code threw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsError {
    /// The error's `name` (`TypeError`, `SyntaxError`, or `Error` for a thrown non-error).
    pub name: String,
    /// The error's `message`.
    pub message: String,
    /// The error's `stack`, as QuickJS renders it (may be empty).
    #[serde(default)]
    pub stack: String,
}

impl std::fmt::Display for JsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// Source that does not compile, with where QuickJS stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileError {
    /// The compiler's message (`SyntaxError: ...`).
    pub message: String,
    /// 1-based line of the error, when QuickJS reported one.
    pub line: Option<u32>,
    /// 1-based column of the error, when QuickJS reported one.
    pub column: Option<u32>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{} (line {line}, column {column})", self.message)
            }
            (Some(line), None) => write!(f, "{} (line {line})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Every way a sandbox operation fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    /// User code threw (or returned a rejected Promise).
    #[error("{0}")]
    Thrown(JsError),
    /// The source does not compile.
    #[error("{0}")]
    Compile(CompileError),
    /// The call ran past its wall-clock deadline and was stopped.
    #[error("deadline exceeded: the call ran longer than {0:?} and was stopped")]
    Timeout(Duration),
    /// A configured limit other than time was hit (memory, log size, ...).
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// No sandbox instance was free for a call of the tree (the pool or the
    /// payer's share of it is full): the whole tree ended.
    #[error("{0}")]
    Capacity(crate::admission::Capacity),
    /// The guest trapped for a reason that is not a limit (a bug or a guest abort).
    #[error("the sandbox trapped: {0}")]
    Trap(String),
    /// The engine or the guest image could not be set up.
    #[error("sandbox set-up failed: {0}")]
    Setup(String),
}

impl SandboxError {
    pub(crate) fn setup(context: &str, error: impl std::fmt::Display) -> Self {
        SandboxError::Setup(format!("{context}: {error}"))
    }
}

/// A limit a host import enforces, raised as a trap and turned back into
/// [`SandboxError::Limit`] when the call ends.
#[derive(Debug)]
pub(crate) struct LimitExceeded(pub String);

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitExceeded {}

/// A nested call ran out of the call tree's time: ends every call above it.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call tree's deadline passed in a nested call")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// The frames of a QuickJS stack that belong to user code. Frames of the
/// guest's prelude (evaluated as `eval_script`) are valbox's internals and
/// are dropped; the web platform's functions (stripped of positions, shown
/// as `<null>:0:1` or a bare `at name`) are shown like built-ins,
/// `at URL (native)`; user modules and JSON input positions stay.
pub(crate) fn user_frames(stack: &str) -> String {
    let prelude = |frame: &str| {
        let frame = frame.trim();
        frame.contains("(eval_script") || frame.starts_with("at eval_script")
    };
    let stripped = |frame: &str| {
        let frame = frame.trim();
        frame.ends_with("(<null>:0:1)")
            || (frame.starts_with("at ") && !frame.contains(':') && !frame.ends_with(')'))
    };
    if !stack.lines().any(|frame| prelude(frame) || stripped(frame)) {
        return stack.to_string();
    }
    tracing::debug!(stack, "a guest error's full stack");
    let mut shown = String::with_capacity(stack.len());
    for frame in stack.lines().filter(|frame| !prelude(frame)) {
        if stripped(frame) {
            shown.push_str(frame.trim_end_matches("(<null>:0:1)").trim_end());
            shown.push_str(" (native)\n");
        } else {
            shown.push_str(frame);
            shown.push('\n');
        }
    }
    shown
}

/// Reads `line:column` out of a QuickJS stack such as `    at val.js:3:14`.
pub(crate) fn position_from_stack(stack: &str) -> (Option<u32>, Option<u32>) {
    for frame in stack.lines() {
        let frame = frame.trim().trim_end_matches(')');
        let mut parts = frame.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.parse().ok());
        let line = parts.next().and_then(|l| l.parse().ok());
        if line.is_some() {
            return (line, column);
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::{position_from_stack, user_frames};

    #[test]
    fn internal_frames_leave_the_stack() {
        let stack = "    at reviveError (eval_script:74:35)\n    at libraryCall (eval_script:459:34)\n    \
                     at rec (deep2/rec.js:3:40)\n    at parse\n    at URL (<null>:0:1)\n    at map (native)\n    \
                     at <input>:1:1\n    at eval_script:3:1\n    at default (eval.js:1:46)\n";
        assert_eq!(
            user_frames(stack),
            "    at rec (deep2/rec.js:3:40)\n    at parse (native)\n    at URL (native)\n    at map (native)\n    \
             at <input>:1:1\n    at default (eval.js:1:46)\n"
        );
        let clean = "    at default (eval.js:1:46)\n";
        assert_eq!(user_frames(clean), clean);
    }

    #[test]
    fn reads_line_and_column_from_a_quickjs_stack() {
        assert_eq!(
            position_from_stack("    at val.js:3:14\n"),
            (Some(3), Some(14))
        );
        assert_eq!(
            position_from_stack("    at f (val.js:10:2)\n    at <eval> (val.js:1:1)"),
            (Some(10), Some(2))
        );
        assert_eq!(position_from_stack(""), (None, None));
    }
}
