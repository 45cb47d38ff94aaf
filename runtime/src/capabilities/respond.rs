//! `respond-head` and `respond-chunk`: a call streaming its own HTTP
//! answer (see [`crate::response_sink`]). Not capabilities — the call
//! writes its own answer — so no policy is asked; only the store holding
//! the call tree's sink may stream, and it waits for a slow client without
//! its CPU turn.

use super::{header_pairs, Answer, Stop};
use crate::state::CallState;
use serde_json::Value;
use wasmtime::Caller;

/// `{status, headers: [[name, value], …]}` → `ok` when the body is to
/// follow as chunks, `undefined` when this call does not stream (the guest
/// then answers with the whole body, as for any Response).
pub(super) fn head(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let state = caller.data_mut();
    if state.streamed {
        return Err(Answer::type_error("the answer's head was already sent").into());
    }
    let Some(sink) = state.sink.clone() else {
        return Ok(Answer::Undefined);
    };
    let status = request
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| Answer::type_error("the response's status is not 200 to 599"))?;
    let headers = header_pairs(request);
    state.streamed = true;
    let sent = state.shared.cpu.without_turn(|| sink.head(status, headers));
    Ok(Answer::Ok(sent.to_string()))
}

/// The body's next bytes → `ok: true`, or `ok: false` when the client went
/// away (the guest stops reading its stream).
pub(super) fn chunk(caller: &mut Caller<'_, CallState>, bytes: &[u8]) -> Answer {
    let state = caller.data();
    let Some(sink) = state.sink.clone().filter(|_| state.streamed) else {
        return Answer::type_error("no streamed answer has started");
    };
    let sent = state.shared.cpu.without_turn(|| sink.chunk(bytes));
    Answer::Ok(sent.to_string())
}
