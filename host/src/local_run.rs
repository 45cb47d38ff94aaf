//! `valbox run FILE.js [EXPORT] --args JSON`: run one file locally, no server.

use std::path::Path;
use valbox_runtime::{LogLevel, Sandbox, SandboxError};

/// Why a local run did not produce a result; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input from the command line (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The code did not compile or failed while running (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl RunError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Usage(_) => 2,
            RunError::Failed(_) => 1,
        }
    }
}

/// Compiles `file`, calls `export` (default: the file's stem, then `default`)
/// with the JSON array `args`, writes console lines to stderr and returns the
/// JSON result.
pub fn run_file(
    sandbox: &Sandbox,
    file: &Path,
    export: Option<&str>,
    args: &str,
) -> Result<String, RunError> {
    let parsed: serde_json::Value = serde_json::from_str(args)
        .map_err(|e| RunError::Usage(format!("--args is not valid JSON: {e}")))?;
    if !parsed.is_array() {
        return Err(RunError::Usage(
            "--args must be a JSON array, like '[1, 2]'".into(),
        ));
    }
    let source = std::fs::read_to_string(file)
        .map_err(|e| RunError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "main.js".into());
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let export = export.unwrap_or(&stem);
    let bytecode = sandbox.compile(&name, &source).map_err(|e| match e {
        SandboxError::Compile(error) => {
            let position = match (error.line, error.column) {
                (Some(line), Some(column)) => format!(" at {name}:{line}:{column}"),
                (Some(line), None) => format!(" at {name}:{line}"),
                _ => String::new(),
            };
            RunError::Failed(format!("{}{position}", error.message))
        }
        other => RunError::Failed(other.to_string()),
    })?;
    let output = sandbox.call(&bytecode, export, args);
    for line in &output.logs {
        let prefix = match line.level {
            LogLevel::Log | LogLevel::Info | LogLevel::Debug => "",
            LogLevel::Warn => "warn: ",
            LogLevel::Error => "error: ",
        };
        eprintln!("{prefix}{}", line.message);
    }
    let result = output.result.map_err(|e| match e {
        SandboxError::Thrown(error) if !error.stack.is_empty() => {
            RunError::Failed(format!("Uncaught {error}\n{}", error.stack.trim_end()))
        }
        SandboxError::Thrown(error) => RunError::Failed(format!("Uncaught {error}")),
        other => RunError::Failed(other.to_string()),
    })?;
    // A returned Response prints as its description.
    Ok(match valbox_runtime::returned_response(&result) {
        Some(described) => described.to_string(),
        None => result,
    })
}
