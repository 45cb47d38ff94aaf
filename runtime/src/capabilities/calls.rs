//! `library-call` and `api-call`: running another val in a fresh instance
//! with its own frame. Library calls restrict (stickily) and use the tagged
//! codec; API calls run as the val's author with JSON only.

use super::{identifier, owner, refusal, version, Answer, Stop};
use crate::abi;
use crate::error::{DeadlineExceeded, JsError, SandboxError};
use crate::frame::Frame;
use crate::policy::{decide, Capability, Decision, Owner, Request, ValState};
use crate::sandbox::RunMode;
use crate::state::CallState;
use crate::world::StoredVal;
use serde_json::Value;
use wasmtime::Caller;

/// `@owner.name(...args)`.
pub(super) fn library(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let owner = owner(request)?;
    let name = identifier(request, "name")?;
    let version = version(request)?;
    let args = request
        .get("args")
        .map(Value::to_string)
        .unwrap_or_else(|| "{\"$\":\"a\",\"id\":0,\"v\":[]}".into());
    run_val(caller, owner, name, version, RunMode::Tagged, &args)
}

/// `api(@owner.name, ...args)`.
pub(super) fn api(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let owner = owner(request)?;
    let name = identifier(request, "name")?;
    let version = version(request)?;
    let args = match request.get("args") {
        Some(args @ Value::Array(_)) => args.to_string(),
        _ => return Err(Answer::type_error("api() arguments must be a JSON array").into()),
    };
    let stored = match visible_val(caller, owner, name, version)? {
        Some(stored) => stored,
        None => return Ok(Answer::Undefined),
    };
    let frame = &caller.data().frame;
    let frame = Frame::api(&stored.owner, frame.depth + 1, frame.deadline);
    run_nested(caller, frame, &stored, RunMode::Json, &args)
}

/// Reads (`RunMode::Read`) or calls (`RunMode::Tagged`) a val as a library.
pub(super) fn run_val(
    caller: &mut Caller<'_, CallState>,
    owner: Owner<'_>,
    name: &str,
    version: Option<u32>,
    mode: RunMode,
    args: &str,
) -> Result<Answer, Stop> {
    let stored = match visible_val(caller, owner, name, version)? {
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
    owner: Owner<'_>,
    name: &str,
    version: Option<u32>,
) -> Result<Option<StoredVal>, Answer> {
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
    let decision = decide(
        frame,
        &state.shared.config.policy,
        &Request {
            owner,
            capability: Capability::ReadVal(val_state),
        },
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
    let request = abi::run_request(&stored.bytecode, &stored.name, mode, args);
    let target = format!("@{}.{}@{}", stored.owner, stored.name, stored.version);
    let (result, evaluation) = shared.run_in_frame(world, frame, target, "run", &request);
    caller.data_mut().calls.push(evaluation);
    match result {
        Ok(Ok(payload)) => String::from_utf8(payload).map(Answer::Ok).map_err(|_| {
            Answer::type_error("the called val answered with text that is not UTF-8").into()
        }),
        Ok(Err(thrown)) => Ok(Answer::Thrown(thrown)),
        Err(SandboxError::Timeout(_)) => Err(Stop::Trap(wasmtime::Error::new(DeadlineExceeded))),
        Err(other) => Ok(Answer::Thrown(JsError {
            name: "Error".into(),
            message: format!("@{}.{} failed: {other}", stored.owner, stored.name),
            stack: String::new(),
        })),
    }
}
