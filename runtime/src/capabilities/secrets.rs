//! `read-secret`: `@owner.secrets.key`.

use super::{ask, identifier, owner, refusal, Answer, Stop, Written};
use crate::evaluation::Use;
use crate::policy::{Capability, Decision, Request};
use crate::state::CallState;
use serde_json::Value;
use wasmtime::Caller;

pub(super) fn read(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let owner = owner(request)?;
    let key = identifier(request, "key")?;
    let state = caller.data();
    let decision = ask(
        state,
        &Request {
            owner,
            capability: Capability::ReadSecret,
        },
        Some(&Written {
            used: Use::SecretRead,
            owner: owner.as_written(),
            name: key,
            version: None,
        }),
    );
    match decision {
        Decision::Allow(owner) => Ok(match state.world.secret(&owner, key) {
            Some(value) => Answer::Ok(serde_json::to_string(&value).expect("a string serializes")),
            None => Answer::Undefined,
        }),
        other => Ok(refusal(other)),
    }
}
