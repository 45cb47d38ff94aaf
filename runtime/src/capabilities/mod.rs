//! The `valbox` host imports, one module per capability. Each turns what the
//! guest asks for into a policy [`Request`](crate::policy::Request), asks
//! [`decide`](crate::policy::decide) with the frame of its own store, and acts
//! on the decision; none decides anything itself. The JSON convention of the
//! imports is described in `guest-js/src/lib.rs`.

mod calls;
mod email;
mod fetch;
mod log;
mod secrets;
mod vals;

use crate::abi;
use crate::error::JsError;
use crate::policy::{Decision, Owner};
use crate::state::CallState;
use crate::transform::valid_handle;
use serde_json::Value;
use wasmtime::{Caller, Linker};

/// Module name of valbox's own imports.
pub(crate) const HOST_MODULE: &str = "valbox";

/// Adds every `valbox` import to `linker`.
pub(crate) fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    log::define(linker)?;
    json_import(linker, "read-val", vals::read)?;
    json_import(linker, "write-val", vals::write)?;
    json_import(linker, "read-secret", secrets::read)?;
    json_import(linker, "send-email", email::send)?;
    json_import(linker, "library-call", calls::library)?;
    json_import(linker, "api-call", calls::api)?;
    json_import(linker, "fetch", fetch::fetch)?;
    Ok(())
}

/// What the guest gets back (the WIT `result<answer, refusal>`).
pub(crate) enum Answer {
    /// A value, as JSON text.
    Ok(String),
    /// `undefined`.
    Undefined,
    /// A write that did nothing.
    NoOp,
    /// The called val threw.
    Thrown(JsError),
    /// Refused: the guest throws an error of this name.
    Refused { name: &'static str, message: String },
}

impl Answer {
    fn permission(message: String) -> Answer {
        Answer::Refused {
            name: "PermissionError",
            message,
        }
    }

    fn type_error(message: impl Into<String>) -> Answer {
        Answer::Refused {
            name: "TypeError",
            message: message.into(),
        }
    }

    fn to_json(&self) -> String {
        match self {
            Answer::Ok(json) => format!("{{\"ok\":{json}}}"),
            Answer::Undefined => r#"{"undefined":true}"#.into(),
            Answer::NoOp => r#"{"noop":true}"#.into(),
            Answer::Thrown(error) => serde_json::json!({ "thrown": error }).to_string(),
            Answer::Refused { name, message } => {
                serde_json::json!({ "error": { "name": name, "message": message } }).to_string()
            }
        }
    }
}

/// Why a handler stopped early: an answer for the guest, or a trap that
/// ends the call (the call tree's deadline passed).
pub(crate) enum Stop {
    Answer(Answer),
    Trap(wasmtime::Error),
}

impl From<Answer> for Stop {
    fn from(answer: Answer) -> Stop {
        Stop::Answer(answer)
    }
}

type Handler = fn(&mut Caller<'_, CallState>, &Value) -> Result<Answer, Stop>;

/// Links an import that takes a JSON request and answers with JSON.
fn json_import(
    linker: &mut Linker<CallState>,
    name: &str,
    handler: Handler,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        name,
        move |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> wasmtime::Result<u32> {
            let request = abi::read_bytes(&mut caller, ptr, len)?;
            let answer = match serde_json::from_slice::<Value>(&request) {
                Ok(request) => match handler(&mut caller, &request) {
                    Ok(answer) | Err(Stop::Answer(answer)) => answer,
                    Err(Stop::Trap(trap)) => return Err(trap),
                },
                Err(e) => Answer::type_error(format!("malformed request to the host: {e}")),
            };
            write_answer(&mut caller, answer.to_json().as_bytes())
        },
    )?;
    Ok(())
}

/// Writes an answer into the guest's response buffer and returns its length.
fn write_answer(caller: &mut Caller<'_, CallState>, answer: &[u8]) -> wasmtime::Result<u32> {
    let buffer = caller
        .get_export("response-buffer")
        .and_then(|export| export.into_func())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no response-buffer"))?
        .typed::<u32, u32>(&*caller)?;
    let len = u32::try_from(answer.len()).map_err(|_| wasmtime::Error::msg("answer too large"))?;
    let ptr = buffer.call(&mut *caller, len)?;
    abi::write_bytes(caller, ptr as i32, answer)?;
    Ok(len)
}

/// The `owner` field: `me` or a valid handle.
fn owner(request: &Value) -> Result<Owner<'_>, Answer> {
    match request.get("owner").and_then(Value::as_str) {
        Some("me") => Ok(Owner::Me),
        Some(handle) if valid_handle(handle) => Ok(Owner::Named(handle)),
        Some(handle) => Err(Answer::type_error(format!(
            "`@{handle}` is not a valid user handle"
        ))),
        None => Err(Answer::type_error("the request names no owner")),
    }
}

/// A string field that must be a JavaScript identifier (val names, secret keys).
fn identifier<'a>(request: &'a Value, field: &str) -> Result<&'a str, Answer> {
    let value = request
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Answer::type_error(format!("the request has no `{field}`")))?;
    let mut chars = value.chars();
    let valid = value.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if valid {
        Ok(value)
    } else {
        Err(Answer::type_error(format!(
            "`{value}` is not a valid {field}"
        )))
    }
}

/// The optional `version` field.
fn version(request: &Value) -> Result<Option<u32>, Answer> {
    match request.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| Answer::type_error("version must be a positive integer")),
    }
}

/// The answer for a decision that did not allow.
fn refusal(decision: Decision) -> Answer {
    match decision {
        Decision::Allow(_) => unreachable!("an allowed request is acted on"),
        Decision::Undefined => Answer::Undefined,
        Decision::NoOp => Answer::NoOp,
        Decision::Deny(message) => Answer::permission(message),
    }
}
