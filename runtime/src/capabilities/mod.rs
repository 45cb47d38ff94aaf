//! The `valbox` host imports, one module per capability. Each turns what the
//! guest asks for into a policy [`Request`](crate::policy::Request), asks
//! [`decide`](crate::policy::decide) with the frame of its own store, and acts
//! on the decision; none decides anything itself. The JSON convention of the
//! imports is described in `guest-js/src/lib.rs`.

mod calls;
mod email;
mod fetch;
mod log;
mod respond;
mod secrets;
mod time_zone;
mod vals;

use crate::abi;
use crate::error::JsError;
use crate::evaluation::{Denial, Use};
use crate::policy::{decide, explain, Decision, Owner, Request, Rule};
use crate::state::CallState;
use crate::transform::valid_handle;
use serde_json::Value;
use wasmtime::{Caller, Linker};

/// Module name of valbox's own imports.
pub(crate) const HOST_MODULE: &str = "valbox";

/// Adds every `valbox` import to `linker`.
pub(crate) fn define(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    log::define(linker)?;
    val_import(linker, "read-val", vals::read)?;
    json_import(linker, "write-val", vals::write)?;
    json_import(linker, "read-secret", secrets::read)?;
    json_import(linker, "send-email", email::send)?;
    val_import(linker, "library-call", calls::library)?;
    val_import(linker, "api-call", calls::api)?;
    json_import(linker, "fetch-start", fetch::start)?;
    json_import(linker, "fetch-take", fetch::take)?;
    json_import(linker, "fetch-cancel", fetch::cancel)?;
    json_import(linker, "time-zone", time_zone::lookup)?;
    json_import(linker, "respond-head", respond::head)?;
    link(linker, "respond-chunk", |caller, bytes| {
        Ok(respond::chunk(caller, bytes).to_json())
    })?;
    Ok(())
}

/// What the guest gets back (the WIT `result<answer, refusal>`).
#[derive(Debug)]
pub(crate) enum Answer {
    /// A value, as JSON text.
    Ok(String),
    /// What a called val's `run` answered, its tag byte first (val imports).
    Ran(String),
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
            Answer::Ran(_) => unreachable!("only val imports run vals"),
            Answer::Undefined => r#"{"undefined":true}"#.into(),
            Answer::NoOp => r#"{"noop":true}"#.into(),
            Answer::Thrown(error) => serde_json::json!({ "thrown": error }).to_string(),
            Answer::Refused { name, message } => {
                serde_json::json!({ "error": { "name": name, "message": message } }).to_string()
            }
        }
    }

    /// The answer of a val import: a tag byte and a payload (see the ABI
    /// in `guest-js/src/lib.rs`).
    fn into_val_answer(self) -> String {
        match self {
            Answer::Ran(text) => text,
            Answer::Ok(json) => format!("v{json}"),
            Answer::Undefined | Answer::NoOp => "u".into(),
            Answer::Thrown(error) => format!("t{}", serde_json::json!(error)),
            Answer::Refused { name, message } => {
                format!(
                    "e{}",
                    serde_json::json!({ "name": name, "message": message })
                )
            }
        }
    }
}

/// What a val import (`read-val`, `library-call`, `api-call`) asks for.
pub(crate) struct ValRequest<'a> {
    /// Whose val.
    pub(crate) owner: Owner<'a>,
    /// Which val.
    pub(crate) name: &'a str,
    /// A pinned version, or the latest.
    pub(crate) version: Option<u32>,
    /// The arguments' (tagged) JSON text, not yet checked.
    pub(crate) args: &'a str,
}

impl<'a> ValRequest<'a> {
    /// Reads the length-prefixed fields of a val import's request.
    fn parse(request: &'a [u8]) -> Result<ValRequest<'a>, Answer> {
        let malformed = || Answer::type_error("malformed request to the host");
        let (owner, rest) = abi::split_field(request).ok_or_else(malformed)?;
        let (name, rest) = abi::split_field(rest).ok_or_else(malformed)?;
        let (version, args) = abi::split_field(rest).ok_or_else(malformed)?;
        let text = |bytes| std::str::from_utf8(bytes).map_err(|_| malformed());
        let version: [u8; 4] = version.try_into().map_err(|_| malformed())?;
        Ok(ValRequest {
            owner: owner_named(text(owner)?)?,
            name: checked_identifier(text(name)?, "name")?,
            version: Some(u32::from_le_bytes(version)).filter(|v| *v > 0),
            args: text(args)?,
        })
    }
}

/// Why a handler stopped early: an answer for the guest, or a trap that
/// ends the call (the call tree's deadline passed).
pub(crate) enum Stop {
    Answer(Answer),
    Trap(wasmtime::Error),
}

/// A budget spend: an overdraft ends the call (and its tree) with a limit
/// error, and the tree's first one is counted for the operator.
pub(super) fn spend(
    state: &CallState,
    result: Result<(), crate::budget::Overdraft>,
) -> Result<(), Stop> {
    result.map_err(|overdraft| {
        if let Some(kind) = overdraft.first {
            state.shared.counters.overdrawn(kind);
        }
        Stop::Trap(wasmtime::Error::new(overdraft.error))
    })
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
    link(linker, name, move |caller, request| {
        let answer = match serde_json::from_slice::<Value>(request) {
            Ok(request) => handler(caller, &request),
            Err(e) => Err(Answer::type_error(format!("malformed request to the host: {e}")).into()),
        };
        Ok(settle(answer)?.to_json())
    })
}

type ValHandler = fn(&mut Caller<'_, CallState>, &ValRequest<'_>) -> Result<Answer, Stop>;

/// Links a val import: length-prefixed fields in, a tagged answer out.
fn val_import(
    linker: &mut Linker<CallState>,
    name: &str,
    handler: ValHandler,
) -> wasmtime::Result<()> {
    link(linker, name, move |caller, request| {
        let answer = match ValRequest::parse(request) {
            Ok(request) => handler(caller, &request),
            Err(refused) => Err(refused.into()),
        };
        Ok(settle(answer)?.into_val_answer())
    })
}

/// Links an import taking `(ptr, len)`: `answer` turns the request's bytes
/// into the answer's text, which goes back through the response buffer.
fn link(
    linker: &mut Linker<CallState>,
    name: &str,
    answer: impl Fn(&mut Caller<'_, CallState>, &[u8]) -> wasmtime::Result<String>
        + Send
        + Sync
        + 'static,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        name,
        move |mut caller: Caller<'_, CallState>, ptr: i32, len: i32| -> wasmtime::Result<u32> {
            let request = abi::read_bytes(&mut caller, ptr, len)?;
            let text = answer(&mut caller, &request)?;
            write_answer(&mut caller, text.as_bytes())
        },
    )?;
    Ok(())
}

/// The answer a handler came to, or the trap that ends the call.
fn settle(outcome: Result<Answer, Stop>) -> wasmtime::Result<Answer> {
    match outcome {
        Ok(answer) | Err(Stop::Answer(answer)) => Ok(answer),
        Err(Stop::Trap(trap)) => Err(trap),
    }
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

/// The `headers` field: `[[name, value], …]` string pairs (others skipped).
fn header_pairs(request: &Value) -> Vec<(String, String)> {
    let Some(pairs) = request.get("headers").and_then(Value::as_array) else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter_map(|pair| {
            let name = pair.get(0)?.as_str()?;
            let value = pair.get(1)?.as_str()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The `owner` field: `me` or a valid handle.
fn owner(request: &Value) -> Result<Owner<'_>, Answer> {
    match request.get("owner").and_then(Value::as_str) {
        Some(owner) => owner_named(owner),
        None => Err(Answer::type_error("the request names no owner")),
    }
}

/// `me` or a valid handle.
fn owner_named(owner: &str) -> Result<Owner<'_>, Answer> {
    match owner {
        "me" => Ok(Owner::Me),
        handle if valid_handle(handle) => Ok(Owner::Named(handle)),
        handle => Err(Answer::type_error(format!(
            "`@{handle}` is not a valid user handle"
        ))),
    }
}

/// A string field that must be a JavaScript identifier (val names, secret keys).
fn identifier<'a>(request: &'a Value, field: &str) -> Result<&'a str, Answer> {
    let value = request
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Answer::type_error(format!("the request has no `{field}`")))?;
    checked_identifier(value, field)
}

/// `value` if it is a JavaScript identifier of at most 128 bytes.
fn checked_identifier<'a>(value: &'a str, field: &str) -> Result<&'a str, Answer> {
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

/// What the code wrote, for the record of a refusal.
pub(crate) struct Written<'a> {
    /// What it does with the reference.
    pub(crate) used: Use,
    /// The owner as written: `me` or a handle.
    pub(crate) owner: &'a str,
    /// The val's name or the secret's key (empty for `console.email`).
    pub(crate) name: &'a str,
    /// A pinned version.
    pub(crate) version: Option<u32>,
}

impl Written<'_> {
    /// The reference as the code wrote it.
    fn text(&self) -> String {
        let Written {
            owner,
            name,
            version,
            ..
        } = self;
        let pinned = version.map(|v| format!("@{v}")).unwrap_or_default();
        match self.used {
            Use::Read => format!("@{owner}.{name}{pinned}"),
            Use::LibraryCall => format!("@{owner}.{name}{pinned}(…)"),
            Use::ApiCall => format!("api(@{owner}.{name}{pinned}, …)"),
            Use::Write => format!("@{owner}.{name} = …"),
            Use::SecretRead => format!("@{owner}.secrets.{name}"),
            Use::Email => "console.email(…)".into(),
        }
    }
}

/// Most distinct denials one call's record keeps (code can compute names).
const MAX_DENIALS: usize = 64;

/// Asks the policy about `request` for the code of this store, counting
/// what it refuses and, unless the server opted out, recording why in the
/// call's evaluation record (`written`: what the code wrote).
fn ask(state: &CallState, request: &Request<'_>, written: Option<&Written<'_>>) -> Decision {
    let decision = decide(&state.frame, &state.shared.config.policy, request);
    state.shared.counters.decided(request.capability, &decision);
    if let Some(rule) = explain(&state.frame, request, &decision) {
        state.shared.counters.explained(rule);
        if let (true, Some(written)) = (state.shared.config.explain_denials, written) {
            record_denial(state, rule, &decision, written);
        }
    }
    decision
}

/// Adds a denial to the call's record, or counts it again.
fn record_denial(state: &CallState, rule: Rule, decision: &Decision, written: &Written<'_>) {
    let reference = written.text();
    let mut denials = state.denials.borrow_mut();
    if let Some(seen) = denials
        .iter_mut()
        .find(|d| d.rule == rule && d.reference == reference)
    {
        seen.count += 1;
        return;
    }
    if denials.len() >= MAX_DENIALS {
        return;
    }
    state.tree.mark_denied();
    denials.push(Denial {
        reference,
        used: written.used,
        decision: decision.effect(),
        mode: state.frame.mode,
        rule,
        rule_text: rule.text(),
        hint: String::new(),
        count: 1,
        line: None,
        column: None,
        owner: written.owner.to_string(),
        name: written.name.to_string(),
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(owner: &str, name: &str, version: u32, args: &str) -> Vec<u8> {
        abi::encode_request(&[
            owner.as_bytes(),
            name.as_bytes(),
            &version.to_le_bytes(),
            args.as_bytes(),
        ])
    }

    fn refused(result: Result<ValRequest<'_>, Answer>) -> String {
        match result {
            Err(Answer::Refused { name, message }) => format!("{name}: {message}"),
            Err(_) => panic!("refused with something other than an error"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn val_requests_are_read_field_by_field() {
        let bytes = request("bob", "add", 0, "[1,2]");
        let parsed = ValRequest::parse(&bytes).unwrap();
        assert_eq!(parsed.owner, Owner::Named("bob"));
        assert_eq!(
            (parsed.name, parsed.version, parsed.args),
            ("add", None, "[1,2]")
        );
        let bytes = request("me", "x", 3, "");
        let parsed = ValRequest::parse(&bytes).unwrap();
        assert_eq!(parsed.owner, Owner::Me);
        assert_eq!((parsed.version, parsed.args), (Some(3), ""));
    }

    #[test]
    fn malformed_val_requests_are_refused_not_trusted() {
        let bytes = request("bob", "add", 0, "[]");
        for cut in [0, 3, 6, 12, 17] {
            assert!(refused(ValRequest::parse(&bytes[..cut])).starts_with("TypeError: malformed"));
        }
        let bad_version = abi::encode_request(&[b"bob", b"add", &[1, 0], b"[]"]);
        assert!(refused(ValRequest::parse(&bad_version)).contains("malformed"));
        let not_utf8 = abi::encode_request(&[b"bo\xffb", b"add", &[0; 4], b"[]"]);
        assert!(refused(ValRequest::parse(&not_utf8)).contains("malformed"));
        let bytes = request("Bob Smith", "add", 0, "[]");
        assert!(refused(ValRequest::parse(&bytes)).contains("not a valid user handle"));
        let bytes = request("bob", "constructor.prototype", 0, "[]");
        assert!(refused(ValRequest::parse(&bytes)).contains("not a valid name"));
    }
}
