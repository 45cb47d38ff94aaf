//! `fetch`: outbound HTTP under the operator's [`FetchPolicy`](crate::fetch::FetchPolicy).
//! A request starts (`fetch-start`, where the policy and the budget are
//! asked), runs on its own thread (see [`crate::in_flight`]) while the
//! guest's event loop goes on, and its response is taken once `wait` has
//! said it finished (`fetch-take`), unless the guest gave it up first
//! (`fetch-cancel`, an aborted signal). Bodies travel as strings of
//! byte-valued characters (U+0000–U+00FF).

use super::{ask, header_pairs, refusal, spend, Answer, Stop};
use crate::error::DeadlineExceeded;
use crate::fetch::FetchRequest;
use crate::policy::{Capability, Decision, Owner, Request};
use crate::state::CallState;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wasmtime::Caller;

/// `fetch-start`: asks the policy, spends one of the tree's requests and
/// starts the request; answers its id.
pub(super) fn start(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let state = caller.data();
    let decision = ask(
        state,
        &Request {
            owner: Owner::Me,
            capability: Capability::Fetch,
        },
        None,
    );
    if !matches!(decision, Decision::Allow(_)) {
        return Ok(refusal(decision));
    }
    spend(state, state.tree.budget.fetch(&state.shared.config.budgets))?;
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let headers = header_pairs(request);
    let body = request
        .get("body")
        .and_then(Value::as_str)
        .map(|text| text.chars().map(|c| c as u32 as u8).collect());
    let fetch_request = FetchRequest {
        url: url.to_string(),
        method: request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_string(),
        headers,
        body,
    };
    let policy = state.shared.config.fetch.clone();
    // `AbortSignal.timeout(ms)` passed to `fetch` stops the request then.
    let deadline = match request.get("timeout_ms").and_then(Value::as_u64) {
        Some(ms) => state
            .frame
            .deadline
            .min(Instant::now() + Duration::from_millis(ms)),
        None => state.frame.deadline,
    };
    let frame_deadline = state.frame.deadline;
    let state = caller.data_mut();
    let cpu = &state.shared.cpu;
    let fetches = &mut state.fetches;
    // With the call's most requests out, this waits for one to finish.
    match cpu.without_turn(|| fetches.start(policy, fetch_request, deadline)) {
        Ok(Some(id)) => Ok(Answer::Ok(id.to_string())),
        Ok(None) if deadline < frame_deadline => Ok(Answer::type_error(format!(
            "fetch {url} failed: timed out waiting for one of the call's other requests"
        ))),
        Ok(None) => Err(Stop::Trap(wasmtime::Error::new(DeadlineExceeded))),
        Err(message) => Ok(Answer::type_error(message)),
    }
}

/// The `id` field of `fetch-take` and `fetch-cancel`.
fn id(request: &Value) -> Result<u32, Answer> {
    request
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| Answer::type_error("the request names no fetch"))
}

/// `fetch-take`: the response of a request `wait` said finished, as
/// `{status, statusText, headers, body, url, redirected}`.
pub(super) fn take(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let id = id(request)?;
    match caller.data_mut().fetches.take(id) {
        None => Ok(Answer::type_error(format!("fetch {id} has not finished"))),
        Some(Err(message)) => Ok(Answer::type_error(message)),
        Some(Ok(response)) => {
            let body: String = response.body.iter().map(|b| *b as char).collect();
            let answer = json!({
                "status": response.status,
                "statusText": response.status_text,
                "headers": response.headers,
                "body": body,
                "url": response.url,
                "redirected": response.redirected,
            });
            Ok(Answer::Ok(answer.to_string()))
        }
    }
}

/// `fetch-cancel`: gives a request up (its signal was aborted).
pub(super) fn cancel(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    caller.data_mut().fetches.cancel(id(request)?);
    Ok(Answer::Undefined)
}
