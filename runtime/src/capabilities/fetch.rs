//! `fetch`: outbound HTTP under the operator's [`FetchPolicy`](crate::fetch::FetchPolicy).
//! Bodies travel as strings of byte-valued characters (U+0000–U+00FF).

use super::{ask, header_pairs, refusal, spend, Answer, Stop};
use crate::fetch::{fetch as perform, FetchRequest};
use crate::policy::{Capability, Decision, Owner, Request};
use crate::state::CallState;
use serde_json::{json, Value};
use wasmtime::Caller;

pub(super) fn fetch(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
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
            .min(std::time::Instant::now() + std::time::Duration::from_millis(ms)),
        None => state.frame.deadline,
    };
    let fetched = state
        .shared
        .cpu
        .without_turn(|| perform(&policy, fetch_request, deadline));
    match fetched {
        Ok(response) => {
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
        Err(message) => Ok(Answer::type_error(format!("fetch {url} failed: {message}"))),
    }
}
