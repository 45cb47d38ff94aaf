//! `send-email`: `console.email(subject, body)`; the policy names the recipient.

use super::{ask, refusal, spend, Answer, Stop, Written};
use crate::evaluation::Use;
use crate::policy::{Capability, Decision, Owner, Request};
use crate::state::CallState;
use crate::world::Email;
use serde_json::Value;
use wasmtime::Caller;

pub(super) fn send(caller: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let text = |field: &str| {
        request
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (subject, body) = (text("subject"), text("body"));
    let state = caller.data();
    let limit = state.shared.config.max_email_bytes;
    if subject.len() + body.len() > limit {
        return Err(Answer::Refused {
            name: "RangeError",
            message: format!("console.email is limited to {limit} bytes of subject and body"),
        }
        .into());
    }
    let decision = ask(
        state,
        &Request {
            owner: Owner::Me,
            capability: Capability::SendEmail,
        },
        Some(&Written {
            used: Use::Email,
            owner: "me",
            name: "",
            version: None,
        }),
    );
    match decision {
        Decision::Allow(to) => {
            spend(state, state.tree.budget.email(&state.shared.config.budgets))?;
            let email = Email {
                to,
                from_author: state.frame.author.clone(),
                subject,
                body,
            };
            Ok(match state.world.send_email(email) {
                Ok(()) => Answer::Ok("null".into()),
                Err(message) => Answer::Refused {
                    name: "Error",
                    message: format!("console.email failed: {message}"),
                },
            })
        }
        other => Ok(refusal(other)),
    }
}
