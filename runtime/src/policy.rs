//! The one policy function: every capability decision in valbox is
//! [`decide`]. Host imports describe what the guest asks for as a
//! [`Request`], act on the [`Decision`], and decide nothing themselves.
//!
//! What is not a capability: the web platform inside the guest (SPEC §7).
//! Timers and the host's `wait` import, clocks (`Date`, `performance`),
//! randomness (`Math.random`, `crypto.getRandomValues`, `randomUUID`, from
//! the host's entropy in every instance) and `crypto.subtle` carry nobody's
//! private state, so they are open in every mode and never asked about
//! here; the table of the seed post is unchanged by them. They are bounded
//! by the call tree's deadline, memory and CPU turns like any other code.

use crate::frame::{Frame, Mode};

/// How a reference names the owner: `@me.x` or `@user.x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// `@me`: the author of the running code.
    Me,
    /// `@user`, lower-cased.
    Named(&'a str),
}

/// What a val looked like when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValState {
    /// It exists and is public.
    Public,
    /// It exists and is private.
    Private,
    /// There is no such val.
    Missing,
}

/// The capability code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read a secret (`@me.secrets.key`).
    ReadSecret,
    /// Read or call a val (`@user.name`, `@user.name()`).
    ReadVal(ValState),
    /// Write a val (`@user.name = value`).
    WriteVal,
    /// `console.email(...)`: the decision names the recipient.
    SendEmail,
    /// `fetch(...)`: outbound HTTP, carrying nobody's private state, so
    /// open in every mode (the operator's address guard still applies).
    Fetch,
}

/// One question for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The owner as the code wrote it.
    pub owner: Owner<'a>,
    /// What is asked for.
    pub capability: Capability,
}

/// Operator settings of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicySettings {
    /// `library_writes = "deny"`: restricted code writing the caller's val
    /// (`@A.foo = x` from B's library) is a no-op instead of the seed
    /// table's write.
    pub deny_library_writes: bool,
}

/// What the code gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead, acting on this user's resource (for email: the recipient).
    Allow(String),
    /// The code sees `undefined` (restricted reads).
    Undefined,
    /// The write silently does nothing.
    NoOp,
    /// The code gets a permission error with this message.
    Deny(String),
}

/// Decides one capability for code running in `frame`. The seed post's
/// table (SPEC §2) is exactly this function; `policy_table` tests every cell.
pub fn decide(frame: &Frame, settings: &PolicySettings, request: &Request<'_>) -> Decision {
    let principal = frame.principal.as_deref();
    let author = frame.author.as_deref();
    match frame.mode {
        Mode::Own | Mode::Api => {
            let owner = match request.owner {
                Owner::Me => author,
                Owner::Named(user) => Some(user),
            };
            let own = owner.is_some() && owner == principal;
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadVal(ValState::Missing) if own => Decision::Undefined,
                Capability::ReadSecret | Capability::ReadVal(_) | Capability::WriteVal => {
                    if own {
                        allow(owner, request)
                    } else {
                        deny(principal, owner, request)
                    }
                }
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny(
                        "console.email needs a signed-in user: anonymous code cannot send email"
                            .into(),
                    ),
                },
            }
        }
        Mode::Restricted => {
            let owner = match request.owner {
                Owner::Me => author,
                Owner::Named(user) => Some(user),
            };
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadSecret => Decision::Undefined,
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadVal(_) => Decision::Undefined,
                Capability::WriteVal => match request.owner {
                    Owner::Named(user)
                        if Some(user) == principal && !settings.deny_library_writes =>
                    {
                        Decision::Allow(user.to_string())
                    }
                    _ => Decision::NoOp,
                },
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny(
                        "console.email needs a signed-in user: anonymous code cannot send email"
                            .into(),
                    ),
                },
            }
        }
        Mode::Library => {
            // The old semantics: `@me` is the caller for private state and
            // writes, the author for public vals; the author's own private
            // state is out of reach.
            let owner = match (request.owner, request.capability) {
                (Owner::Me, Capability::ReadVal(ValState::Public)) => author,
                (Owner::Me, _) => principal,
                (Owner::Named(user), _) => Some(user),
            };
            let callers = owner.is_some() && owner == principal;
            match request.capability {
                Capability::Fetch => fetch_for(principal),
                Capability::ReadVal(ValState::Public) => allow(owner, request),
                Capability::ReadSecret | Capability::ReadVal(_) if callers => allow(owner, request),
                Capability::ReadSecret | Capability::ReadVal(_) => Decision::Undefined,
                Capability::WriteVal if callers => allow(owner, request),
                Capability::WriteVal => Decision::NoOp,
                Capability::SendEmail => match principal {
                    Some(user) => Decision::Allow(user.to_string()),
                    None => Decision::Deny("anonymous code cannot send email".into()),
                },
            }
        }
    }
}

/// `fetch` is open in every mode: it carries nobody's private state.
fn fetch_for(principal: Option<&str>) -> Decision {
    Decision::Allow(principal.unwrap_or_default().to_string())
}

fn allow(owner: Option<&str>, request: &Request<'_>) -> Decision {
    match owner {
        Some(user) => Decision::Allow(user.to_string()),
        None => Decision::Deny(format!(
            "{}: anonymous code has no `@me`",
            describe(request, None)
        )),
    }
}

fn deny(principal: Option<&str>, owner: Option<&str>, request: &Request<'_>) -> Decision {
    let who = principal
        .map(|p| format!("@{p}"))
        .unwrap_or_else(|| "anonymous code".into());
    Decision::Deny(format!("{who} may not {}", describe(request, owner)))
}

fn describe(request: &Request<'_>, owner: Option<&str>) -> String {
    let owner = owner
        .map(|o| format!("@{o}"))
        .unwrap_or_else(|| "@me".into());
    match request.capability {
        Capability::ReadSecret => format!("read {owner}'s secrets"),
        Capability::ReadVal(_) => format!("read {owner}'s private vals"),
        Capability::WriteVal => format!("write {owner}'s vals"),
        Capability::SendEmail => "send email".into(),
        Capability::Fetch => "fetch".into(),
    }
}
