//! `read-val` and `write-val`: `@owner.name` and `@owner.name = value`.

use super::{ask, calls, identifier, owner, refusal, spend, Answer, Stop, ValRequest, Written};
use crate::evaluation::Use;
use crate::policy::{Capability, Decision, Request};
use crate::sandbox::RunMode;
use crate::state::CallState;
use serde_json::Value;
use wasmtime::Caller;

/// Reading a val runs it (in a fresh instance, as a library call would):
/// a value val's value comes back as a copy, a function as a marker.
pub(super) fn read(
    caller: &mut Caller<'_, CallState>,
    request: &ValRequest<'_>,
) -> Result<Answer, Stop> {
    calls::run_val(caller, request, RunMode::Read, "[]")
}

/// A write saves a new version of a value val whose module rebuilds the value.
pub(super) fn write(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let owner = owner(request)?;
    let name = identifier(request, "name")?;
    let value = request
        .get("value")
        .ok_or_else(|| Answer::type_error("the request has no value"))?;
    let state = caller.data();
    let limit = state.shared.config.max_args_bytes;
    let value = value.to_string();
    if value.len() > limit {
        return Err(Answer::Refused {
            name: "RangeError",
            message: format!("a val's value is limited to {limit} bytes"),
        }
        .into());
    }
    let decision = ask(
        state,
        &Request {
            owner,
            capability: Capability::WriteVal,
        },
        Some(&Written {
            used: Use::Write,
            owner: owner.as_written(),
            name,
            version: None,
        }),
    );
    let owner = match decision {
        Decision::Allow(owner) => owner,
        other => return Ok(refusal(other)),
    };
    let source = format!("export default __vt.decode({value});\n");
    spend(
        state,
        state
            .tree
            .budget
            .write(&state.shared.config.budgets, source.len() as u64),
    )?;
    let bytecode = state
        .shared
        .compile(&format!("{owner}/{name}.js"), &source)
        .map_err(|e| Answer::Refused {
            name: "Error",
            message: format!("could not save @{owner}.{name}: {e}"),
        })?;
    match state.world.save_value(&owner, name, source, bytecode) {
        Ok(_) => Ok(Answer::Ok("null".into())),
        Err(message) => Ok(Answer::Refused {
            name: "Error",
            message: format!("could not save @{owner}.{name}: {message}"),
        }),
    }
}
