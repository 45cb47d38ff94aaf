//! `library-call` and `api-call`: running another val in a fresh instance
//! with its own frame. Library calls restrict (stickily) and use the tagged
//! codec; API calls run as the val's author with JSON only.

use super::{ask, refusal, Answer, Stop, ValRequest, Written};
use crate::abi;
use crate::error::{DeadlineExceeded, JsError, LimitExceeded, SandboxError};
use crate::evaluation::Use;
use crate::frame::Frame;
use crate::policy::{Capability, Decision, Owner, Request, ValState};
use crate::sandbox::RunMode;
use crate::state::CallState;
use crate::world::StoredVal;
use serde::de::IgnoredAny;
use wasmtime::Caller;

/// `@owner.name(...args)`.
pub(super) fn library(
    caller: &mut Caller<'_, CallState>,
    request: &ValRequest<'_>,
) -> Result<Answer, Stop> {
    let args = checked_args(request.args)?;
    run_val(caller, request, RunMode::Tagged, args)
}

/// `api(@owner.name, ...args)`.
pub(super) fn api(
    caller: &mut Caller<'_, CallState>,
    request: &ValRequest<'_>,
) -> Result<Answer, Stop> {
    let args = checked_args(request.args)?;
    if !args.trim_start().starts_with('[') {
        return Err(Answer::type_error("api() arguments must be a JSON array").into());
    }
    let stored = match visible_val(caller, request, Use::ApiCall)? {
        Some(stored) => stored,
        None => return Ok(Answer::Undefined),
    };
    let frame = &caller.data().frame;
    let frame = Frame::api(&stored.owner, frame.depth + 1, frame.deadline);
    run_nested(caller, frame, &stored, RunMode::Json, args)
}

/// The arguments' text, passed on untouched once it is known to be JSON
/// (no arguments at all: an empty array).
fn checked_args(args: &str) -> Result<&str, Answer> {
    if args.is_empty() {
        return Ok("[]");
    }
    match serde_json::from_str::<IgnoredAny>(args) {
        Ok(_) => Ok(args),
        Err(e) => Err(Answer::type_error(format!(
            "the arguments are not valid JSON: {e}"
        ))),
    }
}

/// Reads (`RunMode::Read`) or calls (`RunMode::Tagged`) a val as a library.
pub(super) fn run_val(
    caller: &mut Caller<'_, CallState>,
    request: &ValRequest<'_>,
    mode: RunMode,
    args: &str,
) -> Result<Answer, Stop> {
    let used = if mode == RunMode::Read {
        Use::Read
    } else {
        Use::LibraryCall
    };
    let stored = match visible_val(caller, request, used)? {
        Some(stored) => stored,
        None => return Ok(Answer::Undefined),
    };
    let frame = caller.data().frame.library_call(&stored.owner);
    run_nested(caller, frame, &stored, mode, args)
}

/// The val the running code may read, as the policy decides: `None` when
/// it sees `undefined`, a permission error when it is refused.
fn visible_val(
    caller: &mut Caller<'_, CallState>,
    request: &ValRequest<'_>,
    used: Use,
) -> Result<Option<StoredVal>, Answer> {
    let ValRequest {
        owner,
        name,
        version,
        ..
    } = *request;
    let state = caller.data();
    let frame = &state.frame;
    let resolved = match owner {
        Owner::Me => frame.author.as_deref(),
        Owner::Named(user) => Some(user),
    };
    let stored = resolved.and_then(|owner| state.world.val(owner, name, version));
    let val_state = match &stored {
        None => ValState::Missing,
        Some(val) if val.public => ValState::Public,
        Some(_) => ValState::Private,
    };
    let decision = ask(
        state,
        &Request {
            owner,
            capability: Capability::ReadVal(val_state),
        },
        Some(&Written {
            used,
            owner: owner.as_written(),
            name,
            version,
        }),
    );
    match decision {
        Decision::Allow(allowed) if Some(allowed.as_str()) == resolved => Ok(stored),
        Decision::Allow(allowed) => Ok(state.world.val(&allowed, name, version)),
        other => match refusal(other) {
            Answer::Undefined | Answer::NoOp => Ok(None),
            refused => Err(refused),
        },
    }
}

/// Runs `stored` in a fresh instance with `frame` and records its trace.
fn run_nested(
    caller: &mut Caller<'_, CallState>,
    frame: Frame,
    stored: &StoredVal,
    mode: RunMode,
    args: &str,
) -> Result<Answer, Stop> {
    let state = caller.data();
    let max_args = state.shared.config.max_args_bytes;
    if args.len() > max_args {
        return Err(Answer::Refused {
            name: "RangeError",
            message: format!(
                "the arguments to @{}.{} are {} bytes, more than the limit of {max_args} bytes",
                stored.owner,
                stored.name,
                args.len()
            ),
        }
        .into());
    }
    let max_depth = state.shared.config.max_depth;
    if frame.depth > max_depth {
        return Err(Answer::Refused {
            name: "RangeError",
            message: format!(
                "call depth limit of {max_depth} exceeded calling @{}.{}",
                stored.owner, stored.name
            ),
        }
        .into());
    }
    let shared = state.shared.clone();
    let world = state.world.clone();
    let tree = state.tree.clone();
    let request = abi::run_request(&stored.bytecode, &stored.name, mode, args);
    let target = format!("@{}.{}@{}", stored.owner, stored.name, stored.version);
    let (result, mut evaluation) =
        shared.run_in_frame(world, frame, tree.clone(), target, "run", &request);
    let result = crate::source_map::remap_thrown(&stored.bytecode, result);
    let budget = &tree.budget;
    if let Ok(Ok(payload)) = &result {
        // A library call whose Promise rejected answers `r` and the error:
        // the callee's trace records it as failed.
        if mode == RunMode::Tagged && payload.first() == Some(&b'r') {
            let error = serde_json::from_slice::<JsError>(&payload[1..])
                .map(|e| e.to_string())
                .unwrap_or_else(|_| "the returned Promise rejected".into());
            evaluation.ok = false;
            evaluation.error = Some(error);
        }
    }
    caller.data_mut().calls.push(evaluation);
    match result {
        Ok(Ok(payload)) => match String::from_utf8(payload) {
            // JSON mode answers with the value alone.
            Ok(json) if mode == RunMode::Json => match crate::sandbox::returned_response(&json) {
                Some(described) => Ok(Answer::Ok(described.to_string())),
                None => Ok(Answer::Ok(json)),
            },
            Ok(answer) => Ok(Answer::Ran(answer)),
            Err(_) => Err(Answer::type_error(
                "the called val answered with text that is not UTF-8",
            )
            .into()),
        },
        Ok(Err(thrown)) => Ok(Answer::Thrown(thrown)),
        Err(SandboxError::Timeout(_)) => Err(Stop::Trap(wasmtime::Error::new(DeadlineExceeded))),
        // No instance for the callee: the server's capacity, not the
        // callee's failure, so the caller's code never sees it as a throw;
        // the whole tree ends with it.
        Err(SandboxError::Capacity(refused)) => Err(Stop::Trap(wasmtime::Error::new(refused))),
        // A spent budget ends the whole tree, not only the callee.
        Err(SandboxError::Limit(_)) if budget.exhausted().is_some() => Err(Stop::Trap(
            wasmtime::Error::new(LimitExceeded(budget.exhausted().unwrap_or_default().into())),
        )),
        Err(other) => Ok(Answer::Thrown(JsError {
            name: "Error".into(),
            message: format!("@{}.{} failed: {other}", stored.owner, stored.name),
            stack: String::new(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_arguments_pass_only_as_json() {
        assert_eq!(checked_args("").ok(), Some("[]"));
        assert_eq!(
            checked_args(r#"[1,{"$":"u"}]"#).ok(),
            Some(r#"[1,{"$":"u"}]"#)
        );
        for bad in ["[1,", "[1] x", "{'a':1}", "[NaN]"] {
            match checked_args(bad) {
                Err(Answer::Refused { name, message }) => {
                    assert_eq!(name, "TypeError");
                    assert!(message.contains("not valid JSON"), "{message}");
                }
                _ => panic!("{bad} was accepted"),
            }
        }
    }
}
